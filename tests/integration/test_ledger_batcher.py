"""The ledger's micro-batcher (issue #20): concurrent transfers go to the ledger as one
batch, and each caller gets what `create_transfer` alone would have answered it."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger import Transfer, TransferKind, TransferResult, create_transfer, verify_ledger
from ledger.batcher import TransferBatcher
from tests.integration.test_ledger import (
    balances,
    deposit,
    hold,
    new_customer_account,
    resolve,
)


async def test_concurrent_holds_go_in_one_batch_each_with_its_own_result(
    engine: AsyncEngine,
) -> None:
    rich, poor = await new_customer_account(engine), await new_customer_account(engine)
    await deposit(engine, rich, 10_000)
    batcher = TransferBatcher(engine, window=0.05, max_batch=100)
    transfers = [hold(f"pay_bt{i}", rich, 100) for i in range(8)]
    transfers.insert(3, hold("pay_bt_poor", poor, 100))  # no funds: refused alone
    results = await asyncio.gather(*(batcher.create(t) for t in transfers))
    assert batcher.batches == 1 and batcher.transfers == 9
    assert results[3] is TransferResult.EXCEEDS_CREDITS
    assert [r for i, r in enumerate(results) if i != 3] == [TransferResult.OK] * 8
    assert await balances(engine, rich) == (800, 0, 0, 10_000)
    assert await balances(engine, poor) == (0, 0, 0, 0)
    # idempotency is the ledger's: the same holds again answer EXISTS, the refused one its
    # stored failure, and move nothing more
    again = await asyncio.gather(*(batcher.create(t) for t in transfers))
    assert again[3] is TransferResult.ID_ALREADY_FAILED
    assert [r for i, r in enumerate(again) if i != 3] == [TransferResult.EXISTS] * 8
    assert await balances(engine, rich) == (800, 0, 0, 10_000)
    # and the posts, batched too
    posts = [resolve(f"pay_bt{i}", rich, 100, TransferKind.POST_PENDING) for i in range(8)]
    assert set(await asyncio.gather(*(batcher.create(t) for t in posts))) == {TransferResult.OK}
    assert await balances(engine, rich) == (0, 800, 0, 10_000)
    assert (await verify_ledger(engine)).ok


async def test_the_same_id_twice_never_shares_a_batch(engine: AsyncEngine) -> None:
    account = await new_customer_account(engine)
    await deposit(engine, account, 1_000)
    batcher = TransferBatcher(engine, window=0.05)
    first, second = await asyncio.gather(
        batcher.create(hold("pay_twice", account, 300)),
        batcher.create(hold("pay_twice", account, 300)),
    )
    # as sequential calls would answer: the first applies, the retry finds it
    assert (first, second) == (TransferResult.OK, TransferResult.EXISTS)
    assert batcher.batches == 2
    assert await balances(engine, account) == (300, 0, 0, 1_000)


async def test_a_transfer_that_raises_fails_only_its_caller(engine: AsyncEngine) -> None:
    account = await new_customer_account(engine)
    await deposit(engine, account, 1_000)
    batcher = TransferBatcher(engine, window=0.05)
    # an amount the database cannot take (bigint overflow) makes the batch's statement raise
    broken = hold("pay_broken", account, 2**70)
    outcomes = await asyncio.gather(
        batcher.create(hold("pay_fine", account, 200)),
        batcher.create(broken),
        return_exceptions=True,
    )
    assert outcomes[0] is TransferResult.OK
    assert isinstance(outcomes[1], Exception)
    assert await balances(engine, account) == (200, 0, 0, 1_000)
    # the fine one was applied once, whichever way it went
    assert await create_transfer(engine, hold("pay_fine", account, 200)) is TransferResult.EXISTS


async def test_a_full_batch_is_sent_without_waiting_for_the_window(engine: AsyncEngine) -> None:
    account = await new_customer_account(engine)
    await deposit(engine, account, 1_000)
    # a window no test would wait for: only the size can send these
    batcher = TransferBatcher(engine, window=3_600, max_batch=4)
    results = await asyncio.gather(
        *(batcher.create(hold(f"pay_full{i}", account, 10)) for i in range(4))
    )
    assert results == [TransferResult.OK] * 4 and batcher.batches == 1


def test_a_linked_transfer_is_refused() -> None:
    batcher = TransferBatcher(None)  # type: ignore[arg-type]  # (never reaches the engine)
    linked = Transfer("x", "a", "b", 1, "EUR", "c", linked=True)
    with pytest.raises(ValueError, match="linked"):
        asyncio.run(batcher.create(linked))
