"""Reconciliation rules: matches, and each kind of discrepancy."""

from __future__ import annotations

from rails.reconcile import Booking, reconcile


def test_matching_sides_reconcile_cleanly() -> None:
    side = [Booking("DBIT", "pay_1", 100, "EUR", "pay_1"), Booking("CRDT", "pay_2", 50, "EUR")]
    result = reconcile(side, side)
    assert (result.matched, result.discrepancies) == (2, [])


def test_every_kind_of_discrepancy_is_reported() -> None:
    ledger = [
        Booking("DBIT", "pay_1", 100, "EUR", "pay_1"),
        Booking("DBIT", "pay_2", 200, "EUR", "pay_2"),
        Booking("DBIT", "pay_3", 300, "EUR", "pay_3"),
    ]
    statement = [
        Booking("DBIT", "pay_1", 100, "EUR"),
        Booking("DBIT", "pay_2", 250, "EUR"),
        Booking("DBIT", "UNKNOWN-7", 75, "EUR"),
        # a return is not the same booking as the payment it returns
        Booking("CRDT", "pay_1", 100, "EUR"),
    ]
    result = reconcile(ledger, statement)
    assert result.matched == 1
    found = {
        (d.kind, d.reference, d.ledger_amount, d.statement_amount) for d in result.discrepancies
    }
    assert found == {
        ("amount_mismatch", "pay_2", 200, 250),
        ("missing_in_statement", "pay_3", 300, None),
        ("missing_in_ledger", "UNKNOWN-7", None, 75),
        ("missing_in_ledger", "pay_1", None, 100),
    }
