"""Small lxml helpers shared by the message modules (each binds its own namespace)."""

from __future__ import annotations

from datetime import datetime

from lxml import etree


def sub(
    namespace: str, parent: etree._Element, tag: str, text: str | None = None
) -> etree._Element:
    """Append `<tag>` (in `namespace`) to `parent`, with optional text."""
    element = etree.SubElement(parent, f"{{{namespace}}}{tag}")
    if text is not None:
        element.text = text
    return element


def text_at(nsmap: dict[str, str], element: etree._Element, path: str) -> str | None:
    """The stripped text at `path` (prefix `d:` for the message namespace), or None."""
    value = element.findtext(path, namespaces=nsmap)
    return value.strip() if value is not None else None


def message_skeleton(
    namespace: str, body_tag: str, message_id: str, created_at: datetime
) -> tuple[etree._Element, etree._Element, etree._Element]:
    """A `Document` in `namespace` holding the message element `body_tag` and its `GrpHdr`
    with MsgId and CreDtTm; returns (document, message, header)."""
    if created_at.tzinfo is None:
        raise ValueError("created_at must be timezone-aware")
    # lxml spells the default namespace with the key None, which lxml-stubs does not model
    document = etree.Element(f"{{{namespace}}}Document", nsmap={None: namespace})  # type: ignore[dict-item]
    message = sub(namespace, document, body_tag)
    header = sub(namespace, message, "GrpHdr")
    sub(namespace, header, "MsgId", message_id)
    sub(namespace, header, "CreDtTm", created_at.isoformat())
    return document, message, header


def serialize(document: etree._Element) -> bytes:
    """The document as UTF-8 bytes with an XML declaration."""
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8")


def agent(namespace: str, parent: etree._Element, tag: str, bic: str) -> None:
    """Append `<tag><Agt><FinInstnId><BICFI>bic</BICFI></FinInstnId></Agt></tag>` (a party
    that is a financial institution, as the camt messages name assigner and assignee)."""
    institution = sub(namespace, sub(namespace, sub(namespace, parent, tag), "Agt"), "FinInstnId")
    sub(namespace, institution, "BICFI", bic)
