"""The ledger's Python face: batches of transfers in one round trip, reads, expiry.

The posting rules themselves run inside PostgreSQL (`ledger/sql/`, newest file wins), so a
batch is one statement: atomic, one round trip, accounts locked in id order. A batch of one
goes to the single-event function (same rules, fewer statements). Outside a caller's
transaction the statement runs in autocommit: the server commits as it ends. This module
only marshals events and results, and retries the rare transient conflicts so callers never
see them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, insert, literal, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledger.models import (
    Account,
    AccountSpec,
    Entry,
    Transfer,
    TransferKind,
    TransferResult,
)
from ledger.tables import ledger_accounts, ledger_entries, ledger_transfer_failures

# deadlock_detected, serialization_failure, unique_violation (two batches raced for one id,
# or two resolutions for one pending transfer): a fresh attempt sees the winner's committed
# rows and answers consistently.
_RETRYABLE = {"40P01", "40001", "23505"}
_ATTEMPTS = 5
_CREATE = text("SELECT ledger_create_transfers(CAST(:events AS jsonb), :now)")
# A batch of one takes the single-event function: same rules, without the batch machinery.
_CREATE_ONE = text(
    "SELECT ledger_create_transfer(CAST(:id AS text), CAST(:kind AS text),"
    " CAST(:debit_account_id AS text), CAST(:credit_account_id AS text),"
    " CAST(:amount AS bigint), CAST(:currency AS text), CAST(:code AS text),"
    " CAST(:pending_id AS text), CAST(:timeout_seconds AS integer), CAST(:linked AS boolean),"
    " CAST(:now AS timestamptz))"
)
_EXPIRE = text("SELECT ledger_expire_pending(:now)")


def _event(transfer: Transfer) -> dict[str, Any]:
    if transfer.kind is TransferKind.EXPIRE_PENDING:
        raise ValueError("expire_pending transfers are written by expiry only")
    return {
        "id": transfer.id,
        "debit_account_id": transfer.debit_account_id,
        "credit_account_id": transfer.credit_account_id,
        "amount": transfer.amount,
        "currency": transfer.currency,
        "code": transfer.code,
        "kind": transfer.kind.value,
        "pending_id": transfer.pending_id,
        "timeout_seconds": transfer.timeout_seconds,
        "linked": transfer.linked,
    }


@asynccontextmanager
async def _single_statement(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection whose next statement is a transaction of its own (autocommit).

    The batch is one statement, so the server can commit it the moment it ends: one round
    trip instead of three (BEGIN, the statement, COMMIT), and the accounts' row locks are
    released without waiting for the client to ask for the commit. Durability is the same:
    the result comes back only after the commit is flushed.
    """
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


def _sqlstate(error: DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


async def create_transfers_in(
    conn: AsyncConnection, batch: Sequence[Transfer], now: datetime | None = None
) -> list[TransferResult]:
    """Apply a batch inside the caller's transaction (commits with the caller's other rows)."""
    if not batch:
        return []
    if len(batch) == 1:
        code = (await conn.execute(_CREATE_ONE, {**_event(batch[0]), "now": now})).scalar_one()
        return [TransferResult(code)]
    events = json.dumps([_event(transfer) for transfer in batch])
    codes = (await conn.execute(_CREATE, {"events": events, "now": now})).scalar_one()
    return [TransferResult(code) for code in codes]


async def create_transfers(
    engine: AsyncEngine, batch: Sequence[Transfer], now: datetime | None = None
) -> list[TransferResult]:
    """Apply a batch in its own transaction; one result per event (see ledger.models)."""
    for attempt in range(_ATTEMPTS):
        try:
            async with _single_statement(engine) as conn:
                return await create_transfers_in(conn, batch, now)
        except DBAPIError as error:
            if _sqlstate(error) not in _RETRYABLE or attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def create_transfer(
    engine: AsyncEngine, transfer: Transfer, now: datetime | None = None
) -> TransferResult:
    """Apply one transfer (a batch of one)."""
    return (await create_transfers(engine, [transfer], now))[0]


async def expire_pending_transfers(engine: AsyncEngine, now: datetime | None = None) -> int:
    """Release every pending transfer whose timeout has passed; returns how many."""
    for attempt in range(_ATTEMPTS):
        try:
            async with _single_statement(engine) as conn:
                expired: int = (await conn.execute(_EXPIRE, {"now": now})).scalar_one()
                return expired
        except DBAPIError as error:
            if _sqlstate(error) not in _RETRYABLE or attempt == _ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


async def failure_of(engine: AsyncEngine, transfer_id: str) -> TransferResult | None:
    """Why a failed transfer id failed the first time (None if it never failed)."""
    async with engine.connect() as conn:
        result = (
            await conn.execute(
                select(ledger_transfer_failures.c.result).where(
                    ledger_transfer_failures.c.id == transfer_id
                )
            )
        ).scalar_one_or_none()
    return TransferResult(result) if result is not None else None


async def create_accounts(engine: AsyncEngine, specs: Sequence[AccountSpec]) -> None:
    """Create accounts (all or none)."""
    async with engine.begin() as conn:
        for spec in specs:
            await create_account_in(conn, spec)


async def create_account_in(conn: AsyncConnection, spec: AccountSpec) -> None:
    """Create one account inside the caller's transaction."""
    await conn.execute(
        insert(ledger_accounts).values(
            id=spec.id,
            tenant_id=spec.tenant_id,
            customer_id=spec.customer_id,
            currency=spec.currency,
            kind=spec.kind,
            debits_must_not_exceed_credits=spec.debits_must_not_exceed_credits,
            credits_must_not_exceed_debits=spec.credits_must_not_exceed_debits,
        )
    )


async def open_account(
    conn: AsyncConnection, *, account_id: str, tenant_id: str, customer_id: str, currency: str
) -> Account:
    """Open a customer account: it may never be debited beyond its credits."""
    await create_account_in(
        conn,
        AccountSpec(
            id=account_id,
            currency=currency,
            kind="customer",
            debits_must_not_exceed_credits=True,
            tenant_id=tenant_id,
            customer_id=customer_id,
        ),
    )
    account = await get_account(conn, account_id)
    assert account is not None
    return account


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
        version=row.version,
    )


async def get_account(conn: AsyncConnection, account_id: str) -> Account | None:
    """Read an account; a sharded account's balances are the sums over its shards."""
    row = (
        await conn.execute(select(ledger_accounts).where(ledger_accounts.c.id == account_id))
    ).first()
    if row is None:
        return None
    account = account_from_row(row)
    shards = (
        await conn.execute(
            select(
                func.count(),
                *(
                    func.coalesce(func.sum(ledger_accounts.c[col]), 0)
                    for col in (
                        "debits_pending",
                        "debits_posted",
                        "credits_pending",
                        "credits_posted",
                        "version",
                    )
                ),
            ).where(ledger_accounts.c.parent_id == account_id)
        )
    ).one()
    if shards[0] == 0:
        return account
    return Account(
        **{
            **account.__dict__,
            "debits_pending": account.debits_pending + int(shards[1]),
            "debits_posted": account.debits_posted + int(shards[2]),
            "credits_pending": account.credits_pending + int(shards[3]),
            "credits_posted": account.credits_posted + int(shards[4]),
            "version": account.version + int(shards[5]),
        }
    )


async def account_entries(
    conn: AsyncConnection, account_id: str, *, limit: int, before_version: int | None = None
) -> list[Entry]:
    """An account's entries, newest first, optionally only those before a version.

    Entries are partitioned by month: a page read over every month probes (and plans) every
    month's partition. Versions have no gaps, so the page is known in advance, the `limit`
    versions below `before_version` (or up to the account's version); they are read from
    last month on first, and from every month only when some are not there (an account idle
    since before last month, or a page deep in its past)."""
    since = recent_months_start(datetime.now(UTC))
    query = recent_entries_query(account_id, before_version, limit, since)
    rows: Sequence[Any] = (await conn.execute(query)).all()
    # each row carries the page's top version: the page is complete when it holds every
    # version from there down (or down to 1)
    if not rows or len(rows) < min(limit, rows[0].top):
        rows = (await conn.execute(account_entries_query(account_id, limit, before_version))).all()
    return [
        Entry(
            account_id=row.account_id,
            version=row.version,
            transfer_id=row.transfer_id,
            debits_pending=row.debits_pending,
            debits_posted=row.debits_posted,
            credits_pending=row.credits_pending,
            credits_posted=row.credits_posted,
            leg=row.leg,
            debits_pending_delta=row.debits_pending_delta,
            debits_posted_delta=row.debits_posted_delta,
            credits_pending_delta=row.credits_pending_delta,
            credits_posted_delta=row.credits_posted_delta,
            created_at=row.created_at,
        )
        for row in rows
    ]


def recent_months_start(now: datetime) -> datetime:
    """The start (UTC) of the month before `now`'s: a bound that prunes a read of the
    partitioned tables to the last two months (and the empty ones ahead)."""
    year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return datetime(year, month, 1, tzinfo=UTC)


def recent_entries_query(
    account_id: str, before_version: int | None, limit: int, since: datetime
) -> Select[Any]:
    """The page's `limit` versions of an account (below `before_version`, or up to the
    account's version), among its entries since `since`; each row with the page's top
    version (`top`)."""
    top: Any = (
        literal(before_version - 1)
        if before_version is not None
        else select(ledger_accounts.c.version)
        .where(ledger_accounts.c.id == account_id)
        .scalar_subquery()
    )
    return (
        select(ledger_entries, top.label("top"))
        .where(
            ledger_entries.c.account_id == account_id,
            ledger_entries.c.version <= top,
            ledger_entries.c.version > top - limit,
            ledger_entries.c.created_at >= since,
            # (and not the empty months ahead; an entry dated later is read with the rest)
            ledger_entries.c.created_at < func.now() + timedelta(days=1),
        )
        .order_by(ledger_entries.c.version.desc())
    )


def account_entries_query(account_id: str, limit: int, before_version: int | None) -> Select[Any]:
    """A keyset page on the (account, version) key over every month (what `account_entries`
    falls back to)."""
    query = select(ledger_entries).where(ledger_entries.c.account_id == account_id)
    if before_version is not None:
        query = query.where(ledger_entries.c.version < before_version)
    return query.order_by(ledger_entries.c.version.desc()).limit(limit)
