"""Notifications of change (COR entries, addenda 98): built, parsed back, read per code."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from nacha import (
    Batch,
    Correction,
    EntryDetail,
    FileHeader,
    NachaError,
    build_change_entry,
    build_file,
    build_return_batch,
    parse_file,
    read_corrected_data,
)

ORIGINAL = EntryDetail(
    transaction_code=23,  # a checking prenote
    receiving_dfi_routing="021000021",
    dfi_account_number="12345678",
    amount_cents=0,
    individual_id="cpt_0123456789",
    individual_name="JOHN SMITH",
    discretionary_data="",
    addenda=None,
    trace_number="091000010000001",
)
BATCH = Batch(
    220, "PAYMENTS", "1234567890", "PPD", "PAYMENT", date(2026, 12, 7), "09100001", 1, [ORIGINAL]
)
HEADER = FileHeader("091000019", "021000021", "BANKSIM ODFI", "PAYMENTS", datetime(2026, 12, 8, 10))


def cor_file(code: str, data: str) -> str:
    entry = build_change_entry(ORIGINAL, code, data, trace_sequence=7)
    batch = build_return_batch(
        BATCH, [entry], batch_number=1, effective_entry_date=date(2026, 12, 8)
    )
    return build_file(HEADER, [replace(batch, sec_code="COR")])


def test_a_cor_entry_round_trips_with_its_change() -> None:
    parsed = parse_file(cor_file("C01", "99887766"))
    (batch,) = parsed.batches
    (entry,) = batch.entries
    assert (batch.sec_code, entry.transaction_code, entry.amount_cents) == ("COR", 21, 0)
    assert entry.change_addenda is not None
    assert entry.change_addenda.change_code == "C01"
    assert entry.change_addenda.original_entry_trace_number == ORIGINAL.trace_number
    assert entry.change_addenda.corrected_data == "99887766"
    assert entry.return_addenda is None


def test_an_unknown_change_code_is_refused_when_built_and_when_parsed() -> None:
    with pytest.raises(NachaError):
        build_change_entry(ORIGINAL, "C99", "x", trace_sequence=1)
    text = cor_file("C02", "021000089").replace("798C02", "798C99")
    with pytest.raises(NachaError) as err:
        parse_file(text)
    assert err.value.code == "invalid_change_code"


@pytest.mark.parametrize(
    ("code", "data", "correction"),
    [
        ("C01", "99887766", Correction(account_number="99887766")),
        ("C02", "021000089", Correction(routing_number="021000089")),
        (
            "C03",
            "021000089   99887766",
            Correction(routing_number="021000089", account_number="99887766"),
        ),
        ("C04", "JANE SMITH", Correction(name="JANE SMITH")),
        ("C05", "32", Correction(transaction_code=32)),
        (
            "C06",
            "99887766".ljust(21) + "32",
            Correction(account_number="99887766", transaction_code=32),
        ),
        (
            "C07",
            "021000089" + "99887766".ljust(17) + "32",
            Correction(routing_number="021000089", account_number="99887766", transaction_code=32),
        ),
    ],
)
def test_corrected_data_is_read_per_change_code(
    code: str, data: str, correction: Correction
) -> None:
    assert read_corrected_data(code, data) == correction
