"""Reconciliation rules: a bank statement's entries against what the ledger booked.

Plain Python. Each side is a list of bookings keyed by direction and the rail's reference
(SEPA: the end-to-end id, which is the payment id; ACH: the trace number). Incoming credits
(money paid into the account) are matched with deposits by the bank's reference the deposit
names, and only with deposits: a payer's reference never matches a payment's return. Every
booking on one side without its twin on the other (a deposit the bank never received, a
credit no deposit books), and every twin with a different amount, is a discrepancy for ops;
nothing is corrected automatically.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

DiscrepancyKind = Literal["missing_in_statement", "missing_in_ledger", "amount_mismatch"]


@dataclass(frozen=True)
class Booking:
    """One money movement on the platform's account at the bank, as one side saw it."""

    direction: str  # DBIT (money out) | CRDT (money back, e.g. a return)
    reference: str
    amount_minor: int
    currency: str
    payment_id: str | None = None
    # an incoming credit (statement) or the deposit booking it (ledger)
    incoming: bool = False
    deposit_id: str | None = None


@dataclass(frozen=True)
class Discrepancy:
    """A booking the two sides disagree on."""

    kind: DiscrepancyKind
    reference: str
    currency: str
    payment_id: str | None
    ledger_amount: int | None
    statement_amount: int | None
    deposit_id: str | None = None


@dataclass(frozen=True)
class Reconciliation:
    """The outcome: how many bookings matched, and every discrepancy."""

    matched: int
    discrepancies: list[Discrepancy]


def reconcile(ledger: Iterable[Booking], statement: Iterable[Booking]) -> Reconciliation:
    """Match the two sides one to one by (direction, incoming or not, reference)."""
    ours = {(b.direction, b.incoming, b.reference): b for b in ledger}
    theirs = {(b.direction, b.incoming, b.reference): b for b in statement}
    matched = 0
    found: list[Discrepancy] = []
    for key in sorted(ours.keys() | theirs.keys()):
        mine, bank = ours.get(key), theirs.get(key)
        if mine is not None and bank is not None:
            if (mine.amount_minor, mine.currency) == (bank.amount_minor, bank.currency):
                matched += 1
                continue
            found.append(
                Discrepancy(
                    "amount_mismatch",
                    key[2],
                    bank.currency,
                    mine.payment_id,
                    mine.amount_minor,
                    bank.amount_minor,
                    mine.deposit_id,
                )
            )
        elif mine is not None:
            found.append(
                Discrepancy(
                    "missing_in_statement",
                    key[2],
                    mine.currency,
                    mine.payment_id,
                    mine.amount_minor,
                    None,
                    mine.deposit_id,
                )
            )
        elif bank is not None:
            found.append(
                Discrepancy(
                    "missing_in_ledger", key[2], bank.currency, None, None, bank.amount_minor
                )
            )
    return Reconciliation(matched, found)
