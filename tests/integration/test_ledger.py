"""The ledger on real PostgreSQL: posting rules, idempotency, and what the database forbids."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger import (
    Transfer,
    TransferKind,
    TransferResult,
    create_transfer,
    get_account,
    open_account,
)
from ledger.models import funding_account_id, settlement_account_id
from payments.api_keys import ensure_tenant
from payments.ids import new_id
from payments.tables import customers

FUNDING = funding_account_id("EUR")
SETTLEMENT = settlement_account_id("sepa", "EUR")


async def new_customer_account(engine: AsyncEngine, currency: str = "EUR") -> str:
    async with engine.begin() as conn:
        await ensure_tenant(conn, "ten_ledger_tests")
        customer_id = new_id("cus")
        await conn.execute(
            customers.insert().values(
                id=customer_id,
                tenant_id="ten_ledger_tests",
                type="individual",
                name="Ada Lovelace",
                country="GB",
                kyc_status="approved",
                kyc_reasons=[],
            )
        )
        account = await open_account(
            conn,
            account_id=new_id("acc"),
            tenant_id="ten_ledger_tests",
            customer_id=customer_id,
            currency=currency,
        )
    return account.id


async def deposit(engine: AsyncEngine, account_id: str, amount: int) -> None:
    result = await create_transfer(
        engine, Transfer(new_id("dep"), FUNDING, account_id, amount, "EUR", "deposit")
    )
    assert result is TransferResult.OK


async def balances(engine: AsyncEngine, account_id: str) -> tuple[int, int, int, int]:
    async with engine.connect() as conn:
        account = await get_account(conn, account_id)
    assert account is not None
    return (
        account.debits_pending,
        account.debits_posted,
        account.credits_pending,
        account.credits_posted,
    )


def hold(payment: str, account_id: str, amount: int) -> Transfer:
    return Transfer(
        f"{payment}:hold",
        account_id,
        SETTLEMENT,
        amount,
        "EUR",
        "payment_hold",
        TransferKind.PENDING,
    )


def resolve(payment: str, account_id: str, amount: int, kind: TransferKind) -> Transfer:
    step = "post" if kind is TransferKind.POST_PENDING else "void"
    return Transfer(
        f"{payment}:{step}",
        account_id,
        SETTLEMENT,
        amount,
        "EUR",
        f"payment_{step}",
        kind,
        pending_id=f"{payment}:hold",
    )


async def test_hold_then_post_moves_money_once(engine: AsyncEngine) -> None:
    account = await new_customer_account(engine)
    await deposit(engine, account, 10_000)
    assert await create_transfer(engine, hold("pay_a", account, 2_500)) is TransferResult.OK
    assert await balances(engine, account) == (2_500, 0, 0, 10_000)
    post = resolve("pay_a", account, 2_500, TransferKind.POST_PENDING)
    assert await create_transfer(engine, post) is TransferResult.OK
    assert await create_transfer(engine, post) is TransferResult.EXISTS  # a retried activity
    assert await balances(engine, account) == (0, 2_500, 0, 10_000)


async def test_void_releases_the_hold_and_a_hold_resolves_once(engine: AsyncEngine) -> None:
    account = await new_customer_account(engine)
    await deposit(engine, account, 1_000)
    await create_transfer(engine, hold("pay_b", account, 1_000))
    void = resolve("pay_b", account, 1_000, TransferKind.VOID_PENDING)
    assert await create_transfer(engine, void) is TransferResult.OK
    assert await balances(engine, account) == (0, 0, 0, 1_000)
    post = resolve("pay_b", account, 1_000, TransferKind.POST_PENDING)
    assert await create_transfer(engine, post) is TransferResult.PENDING_ALREADY_RESOLVED
    assert await balances(engine, account) == (0, 0, 0, 1_000)


async def test_overdraft_is_refused_and_changes_nothing(engine: AsyncEngine) -> None:
    account = await new_customer_account(engine)
    await deposit(engine, account, 999)
    result = await create_transfer(engine, hold("pay_c", account, 1_000))
    assert result is TransferResult.EXCEEDS_CREDITS
    assert await balances(engine, account) == (0, 0, 0, 999)


async def test_repeated_id_with_different_fields_is_an_error(engine: AsyncEngine) -> None:
    account = await new_customer_account(engine)
    await deposit(engine, account, 5_000)
    assert await create_transfer(engine, hold("pay_d", account, 100)) is TransferResult.OK
    different = await create_transfer(engine, hold("pay_d", account, 200))
    assert different is TransferResult.EXISTS_WITH_DIFFERENT_FIELDS
    assert await balances(engine, account) == (100, 0, 0, 5_000)


async def test_concurrent_retries_of_one_hold_move_money_once(engine: AsyncEngine) -> None:
    account = await new_customer_account(engine)
    await deposit(engine, account, 5_000)
    results = await asyncio.gather(
        *(create_transfer(engine, hold("pay_e", account, 700)) for _ in range(8))
    )
    assert sorted(r.value for r in results) == ["exists"] * 7 + ["ok"]
    assert await balances(engine, account) == (700, 0, 0, 5_000)


async def test_unknown_account_and_currency_mismatch(engine: AsyncEngine) -> None:
    account = await new_customer_account(engine)
    missing = Transfer(new_id("t"), FUNDING, "acc_missing", 1, "EUR", "deposit")
    assert await create_transfer(engine, missing) is TransferResult.ACCOUNT_NOT_FOUND
    usd = Transfer(new_id("t"), funding_account_id("USD"), account, 1, "USD", "deposit")
    assert await create_transfer(engine, usd) is TransferResult.CURRENCY_MISMATCH


async def test_database_refuses_overdraft_even_from_buggy_code(engine: AsyncEngine) -> None:
    account = await new_customer_account(engine)
    with pytest.raises(DBAPIError, match="debits_within_credits"):
        async with engine.begin() as conn:
            await conn.execute(
                text("UPDATE ledger_accounts SET debits_posted = 1 WHERE id = :id"), {"id": account}
            )


async def test_transfers_are_append_only(engine: AsyncEngine) -> None:
    account = await new_customer_account(engine)
    await deposit(engine, account, 10)
    for statement in ("UPDATE ledger_transfers SET amount = 1", "DELETE FROM ledger_transfers"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text(statement))


async def test_balances_sum_to_zero_per_currency(engine: AsyncEngine) -> None:
    account = await new_customer_account(engine)
    await deposit(engine, account, 3_000)
    await create_transfer(engine, hold("pay_f", account, 1_000))
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT currency, sum(debits_posted - credits_posted),"
                    " sum(debits_pending - credits_pending) FROM ledger_accounts GROUP BY currency"
                )
            )
        ).all()
    assert rows, "no accounts found"
    for currency, posted, pending in rows:
        assert (posted, pending) == (0, 0), currency
