"""The three forms of a payment batch read into one (api/batch_input.py), and the pain.001
reader (iso20022/pain001.py): what is refused whole, and where each item was."""

from __future__ import annotations

import json

import pytest

from api.batch_input import CSV_COLUMNS, minor_units, read_batch
from api.errors import ProblemError
from iso20022 import pain001

IBAN = "DE89370400440532013000"


def read(body: bytes, media_type: str, **options: str | None) -> object:
    return read_batch(
        body,
        media_type,
        max_items=3,
        reference=options.get("reference"),
        on_invalid_item=options.get("on_invalid_item"),
    )


def refusal(body: bytes, media_type: str) -> str:
    with pytest.raises(ProblemError) as refused:
        read(body, media_type)
    return refused.value.code


def test_csv_rows_become_items_with_their_lines() -> None:
    header = ",".join(CSV_COLUMNS)
    body = (
        f"{header}\r\nr1,acc_x,250,EUR,sepa,Erika,DE,{IBAN},,,,Invoice 1\r\n\r\n"
        "r2,acc_x,12.5,USD,ach,Bob,US,,,021000021,12345678,\r\n"
    ).encode()
    batch = read_batch(body, "text/csv", max_items=3, reference="run-7", on_invalid_item="skip")
    assert (batch.source, batch.reference, batch.on_invalid_item) == ("csv", "run-7", "skip")
    first, second = batch.items
    assert (first.index, first.line, first.reference) == (0, 2, "r1")
    assert first.body["amount"] == 250
    assert first.body["creditor"] == {"name": "Erika", "country": "DE", "iban": IBAN}
    # a blank line is no item; a non-integer amount stays as written, for the item's check
    assert (second.index, second.line, second.body["amount"]) == (1, 4, "12.5")
    assert second.body["creditor"]["routing_number"] == "021000021"
    assert "remittance_info" not in second.body


def test_a_csv_without_the_documented_header_or_with_too_many_rows_is_refused_whole() -> None:
    assert refusal(b"ref,account,amount\nx,y,1\n", "text/csv") == "invalid_csv"
    row = f"r,acc_x,1,EUR,sepa,E,DE,{IBAN},,,,\n"
    too_many = (",".join(CSV_COLUMNS) + "\n" + row * 4).encode()
    assert refusal(too_many, "text/csv") == "payment_batch_too_large"
    assert refusal((",".join(CSV_COLUMNS) + "\n").encode(), "text/csv") == "payment_batch_empty"


def test_json_envelope_is_checked_and_items_keep_their_index() -> None:
    body = json.dumps({"items": [{"reference": "a"}, 7], "on_invalid_item": "skip"}).encode()
    batch = read_batch(body, "application/json", max_items=3, reference=None, on_invalid_item=None)
    assert [(item.index, item.reference) for item in batch.items] == [(0, "a"), (1, None)]
    assert batch.on_invalid_item == "skip"
    assert refusal(b"[]", "application/json") == "validation_error"
    assert refusal(b'{"items": [], "x": 1}', "application/json") == "validation_error"
    assert refusal(b"{not json", "application/json") == "invalid_json"
    # the same items written differently are the same batch (the idempotency fingerprint)
    spaced = b'{ "items" : [ {"reference": "a"}, 7 ], "on_invalid_item": "skip" }'
    again = read_batch(
        spaced, "application/json", max_items=3, reference=None, on_invalid_item=None
    )
    assert again.digest == batch.digest


def test_pain001_transfers_become_items_in_minor_units() -> None:
    document = pain001.build(
        "MSG-1",
        "acc_x",
        [
            {
                "end_to_end_id": "E1",
                "amount": "12.50",
                "currency": "EUR",
                "name": "Erika",
                "country": "DE",
                "iban": IBAN,
                "remittance_info": "Invoice 1",
            },
            {
                "end_to_end_id": "E2",
                "amount": "0.001",
                "currency": "EUR",
                "name": "Bob",
                "country": "DE",
                "iban": IBAN,
            },
        ],
    )
    batch = read_batch(
        document, "application/xml", max_items=3, reference=None, on_invalid_item=None
    )
    assert (batch.source, batch.reference) == ("pain.001", "MSG-1")
    first, second = batch.items
    assert first.body["amount"] == 1250
    assert first.body["rail"] == "sepa"
    assert first.body["remittance_info"] == "Invoice 1"
    assert (first.reference, first.line) == ("E1", pain001.parse(document).transfers[0].line)
    assert (first.line or 0) > 1
    # more decimals than the currency has: the item is named, not the file refused
    assert second.unreadable is not None and second.unreadable[1] == "invalid_amount"


def test_a_pain001_the_schema_refuses_is_refused_whole() -> None:
    document = pain001.build(
        "MSG-1",
        "acc_x",
        [
            {
                "end_to_end_id": "E1",
                "amount": "1.00",
                "currency": "EUR",
                "name": "E",
                "country": "DE",
                "iban": IBAN,
            }
        ],
    )
    assert refusal(document.replace(b"TRF", b"XXX"), "application/xml") == "invalid_pain001"
    assert refusal(b"<Document/>", "application/xml") == "invalid_pain001"
    assert refusal(b"not xml", "text/xml") == "invalid_pain001"


def test_minor_units() -> None:
    assert minor_units("12.50", "EUR") == 1250
    assert minor_units("12", "USD") == 1200
    assert minor_units("1.005", "EUR") is None
    assert minor_units("x", "EUR") is None
    assert minor_units("1", "JPY") is None


def test_a_reference_that_cannot_be_stored_names_no_item() -> None:
    body = json.dumps({"items": [{"reference": "a\x00b"}, {"reference": 5}]}).encode()
    batch = read_batch(body, "application/json", max_items=3, reference=None, on_invalid_item=None)
    assert [item.reference for item in batch.items] == [None, None]
