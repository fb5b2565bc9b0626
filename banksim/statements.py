"""End-of-day statements (camt.053) of the platform's accounts at the bank.

A statement reports the bookings of one simulated date: SEPA books on UTC dates, ACH on its
settlement date (America/New_York) and returns on the local date they are sent. Planted
adjustments (drop an entry, add an unknown one, change an amount) alter what the statement
reports, for reconciliation tests; the closing balance follows what is reported, so the
document stays self-consistent the way a real bank's erroneous statement would be.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from banksim.bank import Bank
from banksim.clock import to_datetime
from banksim.store import Adjustment, Booking
from iso20022.camt053 import (
    RECEIVED_CREDITS,
    AccountStatement,
    Statement,
    StatementEntry,
    build_camt053,
)

RAILS = ("sepa", "ach")
CURRENCIES = {"sepa": "EUR", "ach": "USD"}
ACCOUNT_NAMES = {"sepa": "SEPA settlement account", "ach": "ACH settlement account"}
# ISO bank transaction codes (domain, family, sub-family)
_CODES = {
    ("sepa", "DBIT", False): ("PMNT", "ICDT", "ESCT"),
    ("sepa", "CRDT", True): ("PMNT", "ICDT", "RRTN"),
    ("ach", "DBIT", False): ("PMNT", "ICDT", "ACDT"),
    ("ach", "CRDT", False): ("PMNT", "IDDT", "ADBT"),
}
_RETURN_CODE = ("PMNT", "ICDT", "ARET")
_RECEIVED_CODES = {
    "sepa": ("PMNT", RECEIVED_CREDITS, "ESCT"),
    "ach": ("PMNT", RECEIVED_CREDITS, "ACDT"),
}


def account_id(bank: Bank, rail: str) -> str:
    """The platform's account for `rail`: its SEPA IBAN, its ACH account number."""
    if rail == "sepa":
        return bank.settings.sepa.debtor_iban
    return bank.settings.banksim.ach_account_number


def is_incoming_credit(booking: Booking) -> bool:
    """A credit someone paid in: our own credits are returns (a return code) or ACH debits
    we originated (a trace number); an incoming credit has neither."""
    return booking.direction == "CRDT" and booking.return_code is None and booking.tx_id is None


def book_incoming_credit(
    bank: Bank, rail: str, amount_minor: int, currency: str, reference: str
) -> Booking:
    """Book a credit paid into `rail`'s account now (bank time), under the payer's
    `reference`; it appears on that day's statement."""
    at = bank.now()
    moment = to_datetime(at)
    # SEPA books on UTC dates, ACH on New York dates (as the rails' own bookings do)
    day = moment.date() if rail == "sepa" else bank.calendar.local_date(moment)
    booking = Booking(rail, day.isoformat(), at, "CRDT", amount_minor, currency, reference, None)
    bank.store.add_booking(booking)
    return booking


def _entry(rail: str, booking: Booking) -> StatementEntry:
    returned = booking.return_code is not None
    code = _CODES.get((rail, booking.direction, returned), _RETURN_CODE if returned else None)
    if is_incoming_credit(booking):
        code = _RECEIVED_CODES[rail]
    return StatementEntry(
        direction="CRDT" if booking.direction == "CRDT" else "DBIT",
        amount_minor=booking.amount_minor,
        currency=booking.currency,
        booking_date=date.fromisoformat(booking.booking_date),
        end_to_end_id=booking.end_to_end_id,
        tx_id=booking.tx_id,
        return_code=booking.return_code,
        bank_transaction_code=code or ("PMNT", "ICDT", "OTHR"),
    )


def _matches(entry: StatementEntry, reference: str | None) -> bool:
    return reference is not None and reference in (entry.end_to_end_id, entry.tx_id)


def apply_adjustments(
    rail: str, day: date, entries: list[StatementEntry], adjustments: list[Adjustment]
) -> list[StatementEntry]:
    """`entries` as altered by the planted `adjustments`, in order."""
    for adjustment in adjustments:
        if adjustment.action == "drop":
            entries = [e for e in entries if not _matches(e, adjustment.reference)]
        elif adjustment.action == "change_amount":
            assert adjustment.amount_minor is not None
            amount = adjustment.amount_minor
            entries = [
                replace(e, amount_minor=amount) if _matches(e, adjustment.reference) else e
                for e in entries
            ]
        elif adjustment.action == "add":
            assert adjustment.amount_minor is not None
            reference = adjustment.reference or f"UNKNOWN-{adjustment.id}"
            entries = [
                *entries,
                StatementEntry(
                    direction="DBIT",
                    amount_minor=adjustment.amount_minor,
                    currency=adjustment.currency or CURRENCIES[rail],
                    booking_date=day,
                    end_to_end_id=reference,
                    tx_id=reference if rail == "ach" else None,
                    bank_transaction_code=_CODES[(rail, "DBIT", False)],
                ),
            ]
    return entries


def account_statement(bank: Bank, rail: str, day: date) -> AccountStatement:
    """The statement of `rail`'s account for `day`, adjustments applied."""
    key = day.isoformat()
    opening = bank.store.balance_before(rail, key)
    entries = [_entry(rail, booking) for booking in bank.store.bookings(rail, key)]
    entries = apply_adjustments(rail, day, entries, bank.store.adjustments(rail, key))
    entries = [
        replace(e, entry_ref=f"{rail.upper()}-{key}-{n:05d}") for n, e in enumerate(entries, 1)
    ]
    closing = opening + sum(
        e.amount_minor if e.direction == "CRDT" else -e.amount_minor for e in entries
    )
    return AccountStatement(
        statement_id=f"{rail.upper()}-{key}",
        account=account_id(bank, rail),
        currency=CURRENCIES[rail],
        date=day,
        opening_balance_minor=opening,
        closing_balance_minor=closing,
        entries=entries,
        account_type=rail,
        account_name=ACCOUNT_NAMES[rail],
    )


def statement_xml(bank: Bank, day: date, rails: tuple[str, ...] = RAILS) -> bytes:
    """The camt.053 document for `day` covering `rails`' accounts (XSD-validated)."""
    return build_camt053(
        Statement(
            message_id=f"BSIMSTMT{day:%Y%m%d}{'-'.join(rails).upper()}",
            created_at=to_datetime(bank.now()),
            date=day,
            accounts=[account_statement(bank, rail, day) for rail in rails],
        )
    )
