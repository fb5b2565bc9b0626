"""The rails' character sets and the explicit transliteration into them (rails/charset.py),
and the per-entry validation of a window's NACHA file (rails/ach_file.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nacha import NachaError, parse_file
from rails.ach_file import Origin, build_window_file, check_credit, refusal_reason
from rails.charset import (
    NACHA_NAME_LENGTH,
    SEPA_NAME_LENGTH,
    epc_text,
    meaningful,
    nacha_text,
)

EPC = re.compile(r"[a-zA-Z0-9/\-?:().,'+ ]*")
NACHA = re.compile(r"[\x20-\x7e]*")


@pytest.mark.parametrize(
    ("original", "ach", "sepa"),
    [
        ("Zoë Łukasz-Ñúñez", "Zoe Lukasz-Nunez", "Zoe Lukasz-Nunez"),
        ("Straße & Söhne <GmbH>", "Strasse & Sohne <GmbH>", "Strasse + Sohne (GmbH)"),
        ("Ørsted A/S", "Orsted A/S", "Orsted A/S"),
        ("Jane 😀 Doe", "Jane Doe", "Jane Doe"),
        ("Борис Ельцин", "Boris El'tsin", "Boris El'tsin"),
        ("Erika Mustermann", "Erika Mustermann", "Erika Mustermann"),
        ("John  Smith_Jr@x", "John  Smith_Jr@x", "John Smith Jr x"),
    ],
)
def test_text_outside_the_set_is_transliterated(original: str, ach: str, sepa: str) -> None:
    assert nacha_text(original) == ach
    assert epc_text(original) == sepa


def test_names_are_cut_to_the_rails_field() -> None:
    name = "Bartholomew Montgomery-Fitzgerald the Third of Aberdeenshire"
    assert nacha_text(name) == "Bartholomew Montgomery"
    assert len(nacha_text("Zoë " * 30)) <= NACHA_NAME_LENGTH
    assert len(epc_text("Zoë " * 30)) <= SEPA_NAME_LENGTH
    assert len(epc_text("Zoë " * 30, width=None)) > SEPA_NAME_LENGTH


@pytest.mark.parametrize("original", ["😀", "✓✓", "  ", "\u0301\u0301", "!!!"])
def test_text_with_nothing_the_rail_can_carry_is_not_meaningful(original: str) -> None:
    assert not meaningful(nacha_text(original))
    assert not meaningful(epc_text(original))


@given(st.text(max_size=60))
def test_rail_forms_are_in_the_set_and_idempotent(text: str) -> None:
    ach, sepa = nacha_text(text), epc_text(text)
    assert NACHA.fullmatch(ach)
    assert EPC.fullmatch(sepa)
    assert len(ach) <= NACHA_NAME_LENGTH
    assert len(sepa) <= SEPA_NAME_LENGTH
    assert nacha_text(ach) == ach
    assert epc_text(sepa) == sepa


@given(st.from_regex(r"[a-zA-Z0-9/\-?:().,'+ ]{0,22}", fullmatch=True))
def test_text_the_set_holds_is_unchanged(text: str) -> None:
    # what was valid before the rule existed is built byte for byte the same
    assert nacha_text(text) == text
    assert epc_text(text) == text


@dataclass(frozen=True)
class Credit:
    payment_id: str
    trace_number: str
    amount: int
    creditor_name: str
    routing_number: str = "021000021"
    account_number: str = "12345678"
    transaction_code: int = 22


ORIGIN = Origin("091000019", "1234567890", "PAYMENTS PLATFORM")
CREATED = datetime(2026, 12, 7, 10, 25)
EFFECTIVE = date(2026, 12, 7)


@pytest.mark.parametrize(
    ("credit", "reason", "field"),
    [
        (Credit("pay_amount", "091000010000001", 10_000_000_000, "John Smith"), "AM02", "amount"),
        (
            Credit("pay_routing", "091000010000001", 100, "John Smith", "021000022"),
            "RC01",
            "check_digit",
        ),
        (Credit("pay_name", "091000010000001", 100, "😀"), "CH16", "individual_name"),
    ],
)
def test_an_entry_that_cannot_go_in_a_file_is_found_alone(
    credit: Credit, reason: str, field: str
) -> None:
    with pytest.raises(NachaError) as raised:
        check_credit(ORIGIN, CREATED, "A", EFFECTIVE, credit)
    assert raised.value.field == field
    assert refusal_reason(raised.value) == reason


def test_the_largest_nacha_amount_and_a_foreign_name_go_in_the_file() -> None:
    credit = Credit("pay_max", "091000010000001", 9_999_999_999, "Zoë Łukasz-Ñúñez")
    check_credit(ORIGIN, CREATED, "A", EFFECTIVE, credit)
    document = build_window_file(ORIGIN, CREATED, "A", EFFECTIVE, [credit])
    entry = parse_file(document).batches[0].entries[0]
    assert entry.individual_name.strip() == "Zoe Lukasz-Nunez"
    assert entry.amount_cents == 9_999_999_999
