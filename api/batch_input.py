"""The three forms of `POST /v1/payment-batches`, read into one: raw items with where each
was (JSON index, CSV line, pain.001 line), before any item is judged.

A body that cannot be read as a whole (not JSON, a CSV without the header DESIGN §10
names, a pain.001 the official XSD refuses, more than the item limit) is refused whole
here; an item that is wrong on its own is judged by the router, item by item.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel

from api.errors import ProblemError
from api.fields import CURRENCIES
from iso20022 import pain001
from iso20022.schemas import SchemaError

JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
XML_TYPES = ("application/xml", "text/xml")
# the CSV header (DESIGN §10), in this order
CSV_COLUMNS = (
    "reference",
    "account_id",
    "amount",
    "currency",
    "rail",
    "creditor_name",
    "creditor_country",
    "iban",
    "bic",
    "routing_number",
    "account_number",
    "remittance_info",
)
# an item's JSON field as a CSV body names it
CSV_FIELD = {
    "creditor.name": "creditor_name",
    "creditor.country": "creditor_country",
    "creditor.iban": "iban",
    "creditor.bic": "bic",
    "creditor.routing_number": "routing_number",
    "creditor.account_number": "account_number",
}
RAIL_OF_CURRENCY = {"EUR": "sepa", "USD": "ach"}


@dataclass(frozen=True)
class RawItem:
    """One item as sent: its index, line (CSV, pain.001), reference, and JSON-shaped body."""

    index: int
    line: int | None
    body: Any
    reference: str | None = None
    # a field the conversion to JSON could not read (e.g. a pain.001 amount with more
    # decimals than the currency has): (field, code, detail)
    unreadable: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class BatchRequest:
    """A batch as read from any form."""

    source: str
    items: list[RawItem]
    reference: str | None
    on_invalid_item: str
    # the fingerprint of what was asked (same key + another body is refused)
    digest: str
    field_names: dict[str, str] = field(default_factory=dict)


class BatchFingerprint(BaseModel):
    """What the idempotency record compares: the form and a digest of the batch."""

    source: str
    digest: str
    reference: str | None
    on_invalid_item: str


def _refuse(code: str, detail: str) -> ProblemError:
    return ProblemError(422, code, detail, param="body")


def _too_many(count: int, max_items: int) -> None:
    if count > max_items:
        raise _refuse("payment_batch_too_large", f"{count} items; a batch holds {max_items}.")
    if count == 0:
        raise _refuse("payment_batch_empty", "The batch has no items.")


def read_batch(
    body: bytes,
    media_type: str,
    *,
    max_items: int,
    reference: str | None,
    on_invalid_item: str | None,
) -> BatchRequest:
    """Read a batch body of any accepted form (`reference` and `on_invalid_item` from the
    query string, for the forms that cannot carry them)."""
    if media_type == CSV_TYPE:
        request = _read_csv(body, max_items)
    elif media_type in XML_TYPES:
        request = _read_pain001(body, max_items)
    else:
        request = _read_json(body, max_items)
    return BatchRequest(
        source=request.source,
        items=request.items,
        reference=request.reference or reference,
        on_invalid_item=on_invalid_item or request.on_invalid_item,
        digest=request.digest,
        field_names=request.field_names,
    )


def _read_json(body: bytes, max_items: int) -> BatchRequest:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise ProblemError(
            422, "invalid_json", f"The body is not JSON: {err}", param="body"
        ) from err
    if not isinstance(document, dict) or not isinstance(document.get("items"), list):
        raise ProblemError(
            422, "validation_error", "items: an array of payments is required", param="items"
        )
    unknown = set(document) - {"items", "reference", "on_invalid_item"}
    if unknown:
        name = sorted(unknown)[0]
        raise ProblemError(
            422, "validation_error", f"{name}: extra inputs are not permitted", param=name
        )
    reference = document.get("reference")
    if reference is not None and (
        not isinstance(reference, str) or not 1 <= len(reference) <= 140 or "\x00" in reference
    ):
        raise ProblemError(
            422, "validation_error", "reference: 1 to 140 characters", param="reference"
        )
    mode = document.get("on_invalid_item", "reject")
    if mode not in ("reject", "skip"):
        raise ProblemError(
            422,
            "validation_error",
            "on_invalid_item: must be reject or skip",
            param="on_invalid_item",
        )
    items = document["items"]
    _too_many(len(items), max_items)
    canonical = json.dumps(items, sort_keys=True, separators=(",", ":"))
    return BatchRequest(
        source="json",
        items=[RawItem(index, None, item, _reference(item)) for index, item in enumerate(items)],
        reference=reference,
        on_invalid_item=mode,
        digest=hashlib.sha256(canonical.encode()).hexdigest(),
    )


def _reference(item: Any) -> str | None:
    """An item's reference to name it by in an error, when it has a usable one (text
    without NUL: the answer is stored in PostgreSQL, whose jsonb cannot hold it)."""
    reference = item.get("reference") if isinstance(item, dict) else None
    if not isinstance(reference, str) or "\x00" in reference:
        return None
    return reference[:140] or None


def _read_csv(body: bytes, max_items: int) -> BatchRequest:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _refuse("invalid_csv", "The CSV body is not UTF-8.") from err
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as err:
        raise _refuse("invalid_csv", f"The CSV body cannot be read: {err}") from err
    columns = [name.strip() for name in header or []]
    if set(columns) != set(CSV_COLUMNS) or len(columns) != len(CSV_COLUMNS):
        raise _refuse("invalid_csv", "The first line must be the header " + ",".join(CSV_COLUMNS))
    _too_many(len(rows), max_items)
    items = []
    for index, (line, row) in enumerate(rows):
        if len(row) != len(columns):
            items.append(
                RawItem(
                    index,
                    line,
                    {},
                    unreadable=("body", "invalid_csv", f"{len(row)} cells, not {len(columns)}"),
                )
            )
            continue
        cells = {name: cell.strip() for name, cell in zip(columns, row, strict=True)}
        items.append(RawItem(index, line, _csv_item(cells), _reference(cells)))
    return BatchRequest(
        source="csv",
        items=items,
        reference=None,
        on_invalid_item="reject",
        digest=hashlib.sha256(body).hexdigest(),
        field_names=CSV_FIELD,
    )


def _csv_item(cells: dict[str, str]) -> dict[str, Any]:
    """A CSV row in the JSON item's shape; empty cells are absent fields."""
    creditor = {
        key: cells[column]
        for key, column in (
            ("name", "creditor_name"),
            ("country", "creditor_country"),
            ("iban", "iban"),
            ("bic", "bic"),
            ("routing_number", "routing_number"),
            ("account_number", "account_number"),
        )
        if cells[column]
    }
    amount: Any = cells["amount"]
    if amount.isdigit():
        amount = int(amount)
    item: dict[str, Any] = {
        key: cells[key] for key in ("reference", "account_id", "currency", "rail") if cells[key]
    }
    item["amount"] = amount
    item["creditor"] = creditor
    if cells["remittance_info"]:
        item["remittance_info"] = cells["remittance_info"]
    return item


def minor_units(amount: str, currency: str) -> int | None:
    """A decimal amount in minor units of `currency`; None when it has more decimals than
    the currency (or the currency is not one the platform holds)."""
    digits = CURRENCIES.get(currency)
    if digits is None:
        return None
    try:
        value = Decimal(amount) * (10**digits)
    except InvalidOperation:
        return None
    return int(value) if value == value.to_integral_value() else None


def _read_pain001(body: bytes, max_items: int) -> BatchRequest:
    try:
        initiation = pain001.parse(body)
    except SchemaError as err:
        raise _refuse("invalid_pain001", str(err)) from err
    _too_many(len(initiation.transfers), max_items)
    items = []
    for index, transfer in enumerate(initiation.transfers):
        currency = transfer.currency or ""
        amount = minor_units(transfer.amount or "", currency)
        creditor = {
            key: value
            for key, value in (
                ("name", transfer.creditor_name),
                # the country of the IBAN when the address gives none
                ("country", transfer.creditor_country or (transfer.iban or "")[:2] or None),
                ("iban", transfer.iban),
                ("bic", transfer.bic),
                ("routing_number", transfer.routing_number),
                ("account_number", transfer.account_number),
            )
            if value
        }
        item: dict[str, Any] = {
            "account_id": transfer.account_id,
            "amount": amount,
            "currency": currency,
            "rail": RAIL_OF_CURRENCY.get(currency, "sepa"),
            "creditor": creditor,
        }
        if transfer.remittance_info:
            item["remittance_info"] = transfer.remittance_info
        unreadable = None
        if amount is None:
            unreadable = (
                "amount",
                "invalid_amount",
                f"{transfer.amount} {currency} is not a whole number of minor units",
            )
        items.append(RawItem(index, transfer.line, item, transfer.end_to_end_id, unreadable))
    return BatchRequest(
        source="pain.001",
        items=items,
        reference=initiation.message_id or None,
        on_invalid_item="reject",
        digest=hashlib.sha256(body).hexdigest(),
    )
