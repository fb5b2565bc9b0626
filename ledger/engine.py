"""Posting rules: apply a transfer to account balances atomically and idempotently.

Each call runs in its own transaction and:
1. claims the transfer id (INSERT … ON CONFLICT DO NOTHING): a repeated id returns the
   original outcome instead of moving money twice;
2. locks the touched accounts in id order (so concurrent transfers never deadlock);
3. checks limits, then updates balances. The database's CHECK constraints repeat the
   limits, so a bug here fails loudly instead of overdrawing an account.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledger.models import Account, Transfer, TransferKind, TransferResult
from payments.tables import ledger_accounts, ledger_transfers


class _Abort(Exception):
    """Roll the transaction back and report `result`."""

    def __init__(self, result: TransferResult) -> None:
        super().__init__(result.value)
        self.result = result


def account_from_row(row: Any) -> Account:
    """Build an `Account` from a `ledger_accounts` row."""
    return Account(
        id=row.id,
        tenant_id=row.tenant_id,
        customer_id=row.customer_id,
        currency=row.currency,
        kind=row.kind,
        debits_must_not_exceed_credits=row.debits_must_not_exceed_credits,
        credits_must_not_exceed_debits=row.credits_must_not_exceed_debits,
        debits_pending=row.debits_pending,
        debits_posted=row.debits_posted,
        credits_pending=row.credits_pending,
        credits_posted=row.credits_posted,
    )


async def get_account(conn: AsyncConnection, account_id: str) -> Account | None:
    """Read one account and its balances."""
    row = (
        await conn.execute(select(ledger_accounts).where(ledger_accounts.c.id == account_id))
    ).first()
    return account_from_row(row) if row else None


async def open_account(
    conn: AsyncConnection, *, account_id: str, tenant_id: str, customer_id: str, currency: str
) -> Account:
    """Open a customer account: it may never be debited beyond its credits."""
    await conn.execute(
        insert(ledger_accounts).values(
            id=account_id,
            tenant_id=tenant_id,
            customer_id=customer_id,
            currency=currency,
            kind="customer",
            debits_must_not_exceed_credits=True,
            credits_must_not_exceed_debits=False,
        )
    )
    account = await get_account(conn, account_id)
    assert account is not None
    return account


def _same_fields(existing: Any, transfer: Transfer) -> bool:
    return bool(
        existing.debit_account_id == transfer.debit_account_id
        and existing.credit_account_id == transfer.credit_account_id
        and existing.amount == transfer.amount
        and existing.currency == transfer.currency
        and existing.code == transfer.code
        and existing.kind == transfer.kind.value
        and existing.pending_id == transfer.pending_id
    )


async def create_transfer(engine: AsyncEngine, transfer: Transfer) -> TransferResult:
    """Apply `transfer` in its own transaction; see the module docstring for the rules."""
    if transfer.amount <= 0:
        raise ValueError("transfer amount must be a positive integer of minor units")
    for attempt in range(3):
        try:
            async with engine.begin() as conn:
                return await _apply(conn, transfer)
        except _Abort as abort:
            return abort.result
        except IntegrityError:
            # A concurrent transfer claimed the same id or resolved the same hold first;
            # a fresh attempt sees its committed row and answers EXISTS / ALREADY_RESOLVED.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def create_transfer_in(conn: AsyncConnection, transfer: Transfer) -> TransferResult:
    """Apply `transfer` inside the caller's transaction (a savepoint undoes a refusal).

    For writes that must commit together with other rows (a deposit record and its
    transfer, say).
    """
    if transfer.amount <= 0:
        raise ValueError("transfer amount must be a positive integer of minor units")
    try:
        async with conn.begin_nested():
            return await _apply(conn, transfer)
    except _Abort as abort:
        return abort.result


async def _existing_result(conn: AsyncConnection, transfer: Transfer) -> TransferResult | None:
    existing = (
        await conn.execute(select(ledger_transfers).where(ledger_transfers.c.id == transfer.id))
    ).first()
    if existing is None:
        return None
    if _same_fields(existing, transfer):
        return TransferResult.EXISTS
    return TransferResult.EXISTS_WITH_DIFFERENT_FIELDS


async def _apply(conn: AsyncConnection, transfer: Transfer) -> TransferResult:
    previous = await _existing_result(conn, transfer)
    if previous is not None:
        return previous
    account_ids = sorted({transfer.debit_account_id, transfer.credit_account_id})
    rows = (
        await conn.execute(
            select(ledger_accounts)
            .where(ledger_accounts.c.id.in_(account_ids))
            .order_by(ledger_accounts.c.id)
            .with_for_update()
        )
    ).all()
    accounts = {row.id: account_from_row(row) for row in rows}
    if len(accounts) != len(account_ids):
        raise _Abort(TransferResult.ACCOUNT_NOT_FOUND)
    debit = accounts[transfer.debit_account_id]
    credit = accounts[transfer.credit_account_id]
    if debit.currency != transfer.currency or credit.currency != transfer.currency:
        raise _Abort(TransferResult.CURRENCY_MISMATCH)

    if transfer.kind in (TransferKind.POST_PENDING, TransferKind.VOID_PENDING):
        await _check_pending(conn, transfer)
    claimed = await conn.execute(_claim_statement(transfer))
    if claimed.first() is None:
        # lost a race for the id to a transaction that committed meanwhile
        raise _Abort(await _existing_result(conn, transfer) or TransferResult.EXISTS)

    deltas = _balance_deltas(transfer)
    _check_limits(debit, deltas[debit.id])
    _check_limits(credit, deltas[credit.id])
    for account_id, delta in deltas.items():
        await conn.execute(
            update(ledger_accounts)
            .where(ledger_accounts.c.id == account_id)
            .values({col: ledger_accounts.c[col] + amount for col, amount in delta.items()})
        )
    return TransferResult.OK


def _claim_statement(transfer: Transfer) -> Any:
    return (
        pg_insert(ledger_transfers)
        .values(
            id=transfer.id,
            debit_account_id=transfer.debit_account_id,
            credit_account_id=transfer.credit_account_id,
            amount=transfer.amount,
            currency=transfer.currency,
            code=transfer.code,
            kind=transfer.kind.value,
            pending_id=transfer.pending_id,
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(ledger_transfers.c.id)
    )


async def _check_pending(conn: AsyncConnection, transfer: Transfer) -> None:
    pending = (
        await conn.execute(
            select(ledger_transfers).where(ledger_transfers.c.id == transfer.pending_id)
        )
    ).first()
    if pending is None or pending.kind != TransferKind.PENDING.value:
        raise _Abort(TransferResult.PENDING_NOT_FOUND)
    if (
        pending.debit_account_id != transfer.debit_account_id
        or pending.credit_account_id != transfer.credit_account_id
        or pending.amount != transfer.amount
    ):
        raise _Abort(TransferResult.PENDING_MISMATCH)
    resolved = (
        await conn.execute(
            select(ledger_transfers.c.id).where(
                ledger_transfers.c.pending_id == transfer.pending_id
            )
        )
    ).first()
    if resolved is not None:
        raise _Abort(TransferResult.PENDING_ALREADY_RESOLVED)


def _balance_deltas(transfer: Transfer) -> dict[str, dict[str, int]]:
    """Per account, how much each balance column moves."""
    amount = transfer.amount
    debit, credit = transfer.debit_account_id, transfer.credit_account_id
    if transfer.kind is TransferKind.SINGLE:
        return {debit: {"debits_posted": amount}, credit: {"credits_posted": amount}}
    if transfer.kind is TransferKind.PENDING:
        return {debit: {"debits_pending": amount}, credit: {"credits_pending": amount}}
    if transfer.kind is TransferKind.POST_PENDING:
        return {
            debit: {"debits_pending": -amount, "debits_posted": amount},
            credit: {"credits_pending": -amount, "credits_posted": amount},
        }
    return {debit: {"debits_pending": -amount}, credit: {"credits_pending": -amount}}


def _check_limits(account: Account, delta: dict[str, int]) -> None:
    def after(column: str) -> int:
        return int(getattr(account, column)) + delta.get(column, 0)

    debits = after("debits_pending") + after("debits_posted")
    credits = after("credits_pending") + after("credits_posted")
    if account.debits_must_not_exceed_credits and debits > after("credits_posted"):
        raise _Abort(TransferResult.EXCEEDS_CREDITS)
    if account.credits_must_not_exceed_debits and credits > after("debits_posted"):
        raise _Abort(TransferResult.EXCEEDS_DEBITS)
