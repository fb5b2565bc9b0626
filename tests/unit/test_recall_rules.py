"""Which recalls the rails allow (services/recalls.py): one per settled payment; on ACH a
reversal only for an erroneous entry (DUPL, TECH) within five Fed banking days."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest

from services.errors import ConflictError
from services.recalls import banking_days_between, check_recallable

# Friday 2026-11-20; the next Thursday is Thanksgiving (a Fed holiday)
FRIDAY = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


def payment(rail: str = "ach", recall: object = None, status: str = "settled") -> object:
    return SimpleNamespace(id="pay_1", rail=rail, status=status, recall=recall)


def test_banking_days_skip_weekends_and_fed_holidays() -> None:
    assert banking_days_between(date(2026, 11, 20), date(2026, 11, 23)) == 1  # Mon
    # Mon, Tue, Wed, (Thanksgiving), Fri, Mon
    assert banking_days_between(date(2026, 11, 20), date(2026, 11, 30)) == 5
    assert banking_days_between(date(2026, 11, 20), date(2026, 12, 1)) == 6


def test_an_ach_reversal_within_five_banking_days_is_allowed() -> None:
    check_recallable(payment(), "DUPL", FRIDAY, datetime(2026, 11, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    ("row", "reason", "now", "code"),
    [
        (payment(), "TECH", datetime(2026, 12, 1, tzinfo=UTC), "recall_not_allowed"),
        (payment(), "FRAD", FRIDAY, "recall_not_allowed"),
        (payment(), "CUST", FRIDAY, "recall_not_allowed"),
        (payment(status="submitted"), "DUPL", FRIDAY, "payment_not_recallable"),
        (
            payment("sepa", recall={"status": "rejected"}),
            "DUPL",
            FRIDAY,
            "payment_already_recalled",
        ),
    ],
)
def test_recalls_the_rails_refuse(row: object, reason: str, now: datetime, code: str) -> None:
    with pytest.raises(ConflictError) as refused:
        check_recallable(row, reason, FRIDAY, now)
    assert refused.value.code == code


def test_sepa_takes_every_rulebook_reason_at_any_time() -> None:
    for reason in ("DUPL", "TECH", "FRAD", "CUST"):
        check_recallable(payment("sepa"), reason, FRIDAY, datetime(2027, 1, 4, tzinfo=UTC))
