"""The ledger on real PostgreSQL: posting rules, idempotency, and what the database forbids."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.api_keys import ensure_tenant
from kernel.ids import new_id
from kernel.tables import customers
from ledger import (
    Transfer,
    TransferKind,
    TransferResult,
    account_entries,
    create_transfer,
    create_transfers,
    expire_pending_transfers,
    failure_of,
    get_account,
    open_account,
    verify_ledger,
)
from ledger.models import funding_account_id, settlement_account_id, shard_of

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
    assert await create_transfer(engine, post) is TransferResult.PENDING_TRANSFER_ALREADY_VOIDED
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
    assert different is TransferResult.EXISTS_WITH_DIFFERENT_AMOUNT
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
    assert await create_transfer(engine, missing) is TransferResult.CREDIT_ACCOUNT_NOT_FOUND
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


async def test_partial_post_releases_the_rest(engine: AsyncEngine) -> None:
    account = await new_customer_account(engine)
    await deposit(engine, account, 1_000)
    await create_transfer(engine, hold("pay_g", account, 600))
    partial = Transfer(
        "pay_g:post",
        None,
        None,
        250,
        None,
        "payment_post",
        TransferKind.POST_PENDING,
        pending_id="pay_g:hold",
    )
    assert await create_transfer(engine, partial) is TransferResult.OK
    assert await balances(engine, account) == (0, 250, 0, 1_000)


async def test_linked_chain_is_all_or_nothing(engine: AsyncEngine) -> None:
    first, second = await new_customer_account(engine), await new_customer_account(engine)
    await deposit(engine, first, 500)
    chain = [
        Transfer(new_id("t"), first, second, 300, "EUR", "move", linked=True),
        Transfer(new_id("t"), first, second, 300, "EUR", "move"),  # would overdraw
    ]
    results = await create_transfers(engine, chain)
    assert results == [TransferResult.LINKED_EVENT_FAILED, TransferResult.EXCEEDS_CREDITS]
    assert await balances(engine, first) == (0, 0, 0, 500)
    # the failed id stays failed; the linked_event_failed one is free to use again
    assert await create_transfer(engine, chain[1]) is TransferResult.ID_ALREADY_FAILED
    assert await failure_of(engine, chain[1].id) is TransferResult.EXCEEDS_CREDITS
    assert await create_transfer(engine, replace(chain[0], linked=False)) is TransferResult.OK
    open_chain = [Transfer(new_id("t"), first, second, 1, "EUR", "move", linked=True)]
    assert await create_transfers(engine, open_chain) == [TransferResult.LINKED_EVENT_CHAIN_OPEN]


async def test_pending_timeout_expires_and_releases(engine: AsyncEngine) -> None:
    account = await new_customer_account(engine)
    await deposit(engine, account, 1_000)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    timed = Transfer(
        "pay_h:hold",
        account,
        SETTLEMENT,
        400,
        "EUR",
        "payment_hold",
        TransferKind.PENDING,
        timeout_seconds=60,
    )
    assert await create_transfer(engine, timed, now=start) is TransferResult.OK
    assert await expire_pending_transfers(engine, now=start + timedelta(seconds=59)) == 0
    late_post = resolve("pay_h", account, 400, TransferKind.POST_PENDING)
    at_expiry = start + timedelta(seconds=60)
    assert await create_transfer(engine, late_post, now=at_expiry) is (
        TransferResult.PENDING_TRANSFER_EXPIRED
    )
    assert await expire_pending_transfers(engine, now=at_expiry) >= 1
    assert await balances(engine, account) == (0, 0, 0, 1_000)


async def test_entries_record_every_balance_and_verify_passes(engine: AsyncEngine) -> None:
    account = await new_customer_account(engine)
    await deposit(engine, account, 1_000)
    await create_transfer(engine, hold("pay_i", account, 300))
    await create_transfer(engine, resolve("pay_i", account, 300, TransferKind.POST_PENDING))
    async with engine.connect() as conn:
        entries = await account_entries(conn, account, limit=10)
    assert [(e.version, e.debits_pending, e.debits_posted, e.credits_posted) for e in entries] == [
        (3, 0, 300, 1_000),
        (2, 300, 0, 1_000),
        (1, 0, 0, 1_000),
    ]
    report = await verify_ledger(engine)
    assert report.ok, report.problems
    assert report.entries >= 6


async def test_verify_reports_a_balance_changed_behind_the_ledgers_back(
    engine: AsyncEngine,
) -> None:
    account = await new_customer_account(engine)
    await deposit(engine, account, 1_000)

    async def set_credits(value: int) -> None:
        async with engine.begin() as conn:
            # only a superuser bypassing triggers can do this; verify must still notice
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(
                text("UPDATE ledger_accounts SET credits_posted = :v WHERE id = :id"),
                {"v": value, "id": account},
            )

    await set_credits(1_500)
    try:
        report = await verify_ledger(engine)
        assert not report.ok
        assert any(account in problem for problem in report.problems)
        assert any("sum to zero" in problem for problem in report.problems)
    finally:
        await set_credits(1_000)
    assert (await verify_ledger(engine)).ok


async def test_verify_reports_an_entry_that_is_no_leg_of_its_transfer(
    engine: AsyncEngine,
) -> None:
    account = await new_customer_account(engine)
    await deposit(engine, account, 1_000)

    async def as_superuser(statement: str) -> None:
        async with engine.begin() as conn:
            # bypassing triggers, as only a superuser can: verify must notice what they allow
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(text(statement), {"id": account})

    # a copy of the deposit's credit leg, claimed by a transfer that does not exist
    await as_superuser(
        "INSERT INTO ledger_entries (account_id, version, transfer_id, leg,"
        " debits_pending_delta, debits_posted_delta, credits_pending_delta,"
        " credits_posted_delta, debits_pending, debits_posted, credits_pending,"
        " credits_posted)"
        " SELECT account_id, version + 1000, 'no-such-transfer', leg, debits_pending_delta,"
        " debits_posted_delta, credits_pending_delta, credits_posted_delta, debits_pending,"
        " debits_posted, credits_pending, credits_posted"
        " FROM ledger_entries WHERE account_id = :id AND version = 1"
    )
    try:
        report = await verify_ledger(engine)
        assert any(
            f"account {account}: entry 1001 is not a leg of transfer no-such-transfer" in problem
            for problem in report.problems
        ), report.problems
    finally:
        await as_superuser("DELETE FROM ledger_entries WHERE account_id = :id AND version = 1001")
    assert (await verify_ledger(engine)).ok


async def test_hot_settlement_account_is_sharded_and_read_as_one(engine: AsyncEngine) -> None:
    account = await new_customer_account(engine)
    await deposit(engine, account, 10_000)
    async with engine.connect() as conn:
        before = await get_account(conn, SETTLEMENT)
    assert before is not None
    payments = [f"pay_shard_{i}" for i in range(6)]
    shards = {shard_of(SETTLEMENT, payment) for payment in payments}
    assert len(shards) > 1  # different payments lock different rows
    for payment in payments:
        transfer = Transfer(
            f"{payment}:hold",
            account,
            shard_of(SETTLEMENT, payment),
            100,
            "EUR",
            "payment_hold",
            TransferKind.PENDING,
        )
        assert await create_transfer(engine, transfer) is TransferResult.OK
    async with engine.connect() as conn:
        after = await get_account(conn, SETTLEMENT)
    assert after is not None
    assert after.credits_pending - before.credits_pending == 600
