"""Ledger value types: accounts, transfers and the result codes of a transfer."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class TransferKind(enum.StrEnum):
    """What a transfer does to balances (TigerBeetle's two-phase semantics)."""

    SINGLE = "single"  # posted at once
    PENDING = "pending"  # reserves: moves amounts into the *_pending balances
    POST_PENDING = "post_pending"  # turns a reservation into a posted movement
    VOID_PENDING = "void_pending"  # releases a reservation


class TransferResult(enum.StrEnum):
    """Outcome of `create_transfer`; anything but OK/EXISTS changed nothing."""

    OK = "ok"
    EXISTS = "exists"  # same id, same fields: the original result stands (idempotent retry)
    EXISTS_WITH_DIFFERENT_FIELDS = "exists_with_different_fields"
    ACCOUNT_NOT_FOUND = "account_not_found"
    CURRENCY_MISMATCH = "currency_mismatch"
    EXCEEDS_CREDITS = "exceeds_credits"  # would overdraw a debits_must_not_exceed_credits account
    EXCEEDS_DEBITS = "exceeds_debits"
    PENDING_NOT_FOUND = "pending_not_found"
    PENDING_ALREADY_RESOLVED = "pending_already_resolved"
    PENDING_MISMATCH = "pending_mismatch"  # post/void names other accounts than the hold


@dataclass(frozen=True)
class Transfer:
    """A request to move `amount` minor units from `debit_account_id` to `credit_account_id`.

    For POST_PENDING / VOID_PENDING the accounts and amount must repeat the pending transfer's
    (partial posts come with the full ledger engine).
    """

    id: str
    debit_account_id: str
    credit_account_id: str
    amount: int
    currency: str
    code: str
    kind: TransferKind = TransferKind.SINGLE
    pending_id: str | None = None


@dataclass(frozen=True)
class Account:
    """An account with its four balances, in minor units."""

    id: str
    tenant_id: str | None
    customer_id: str | None
    currency: str
    kind: str
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int

    @property
    def posted(self) -> int:
        """Net posted balance from the account holder's side (credits minus debits)."""
        return self.credits_posted - self.debits_posted

    @property
    def pending(self) -> int:
        """Net pending movement (incoming minus outgoing reservations)."""
        return self.credits_pending - self.debits_pending

    @property
    def available(self) -> int:
        """What can still be spent: posted credits less everything debited or reserved."""
        return self.credits_posted - self.debits_posted - self.debits_pending


def settlement_account_id(rail: str, currency: str) -> str:
    """The system account that collects holds for a rail in a currency."""
    return f"acc_sys_settlement_{rail}_{currency.lower()}"


def funding_account_id(currency: str) -> str:
    """The system account that incoming deposits are debited from."""
    return f"acc_sys_funding_{currency.lower()}"
