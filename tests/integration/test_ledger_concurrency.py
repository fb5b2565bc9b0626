"""The ledger under concurrent batches, racing retries, and direct tampering in SQL."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter, defaultdict

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger import (
    Account,
    Transfer,
    TransferKind,
    TransferResult,
    create_accounts,
    create_transfer,
    create_transfers,
    failure_of,
    get_account,
    verify_ledger,
)
from ledger.models import AccountSpec

R = TransferResult
RING_SIZE = 8
FUNDING_PER_ACCOUNT = 100
TASKS = 16
TRANSFERS_PER_TASK = 50


def new_prefix() -> str:
    return f"lc{uuid.uuid4().hex[:10]}"


async def fetch(engine: AsyncEngine, account_id: str) -> Account:
    async with engine.connect() as conn:
        account = await get_account(conn, account_id)
    assert account is not None, account_id
    return account


def state(account: Account) -> tuple[int, int, int, int, int]:
    return (
        account.debits_pending,
        account.debits_posted,
        account.credits_pending,
        account.credits_posted,
        account.version,
    )


async def open_funded(
    engine: AsyncEngine, prefix: str, names: list[str], amount: int
) -> tuple[str, list[str]]:
    """A funding account (no limits) and accounts that may not overdraw, each funded."""
    funding = f"{prefix}-funding"
    accounts = [f"{prefix}-{name}" for name in names]
    await create_accounts(
        engine,
        [AccountSpec(funding, "EUR", "funding")]
        + [
            AccountSpec(a, "EUR", "settlement", debits_must_not_exceed_credits=True)
            for a in accounts
        ],
    )
    if amount:
        funds = [Transfer(f"{a}-fund", funding, a, amount, "EUR", "fund") for a in accounts]
        assert await create_transfers(engine, funds) == [R.OK] * len(accounts)
    return funding, accounts


async def assert_ledger_ok(engine: AsyncEngine) -> None:
    report = await verify_ledger(engine)
    assert report.ok, report.problems


async def test_concurrent_batches_around_a_ring_conserve_money(engine: AsyncEngine) -> None:
    prefix = new_prefix()
    funding, ring = await open_funded(
        engine, prefix, [f"r{i}" for i in range(RING_SIZE)], FUNDING_PER_ACCOUNT
    )

    async def task(number: int) -> list[tuple[Transfer, TransferResult]]:
        rng = random.Random(number)
        done: list[tuple[Transfer, TransferResult]] = []
        while len(done) < TRANSFERS_PER_TASK:
            batch: list[Transfer] = []
            for _ in range(min(rng.randint(1, 5), TRANSFERS_PER_TASK - len(done))):
                i = rng.randrange(RING_SIZE)
                j = (i + rng.choice((1, -1, 3))) % RING_SIZE  # neighbours, either way round
                transfer_id = f"{prefix}-w{number}-{len(done) + len(batch)}"
                amount = rng.randint(1, 60)
                batch.append(Transfer(transfer_id, ring[i], ring[j], amount, "EUR", "ring"))
            results = await create_transfers(engine, batch)
            assert len(results) == len(batch)
            done.extend(zip(batch, results, strict=True))
        return done

    # Any exception (deadlock, serialization failure, ...) fails the test here.
    outcomes = [pair for done in await asyncio.gather(*map(task, range(TASKS))) for pair in done]
    counts = Counter(TransferResult(result) for _, result in outcomes)
    assert set(counts) <= {R.OK, R.EXCEEDS_CREDITS}, counts
    assert counts[R.OK] > len(outcomes) // 4, counts  # money did move

    # Exactly the transfers answered OK moved money, once each.
    debits: dict[str, int] = defaultdict(int)
    credits: dict[str, int] = defaultdict(int)
    legs: Counter[str] = Counter()
    for transfer, result in outcomes:
        if result is R.OK:
            assert transfer.debit_account_id and transfer.credit_account_id and transfer.amount
            debits[transfer.debit_account_id] += transfer.amount
            credits[transfer.credit_account_id] += transfer.amount
            legs.update([transfer.debit_account_id, transfer.credit_account_id])
    total = 0
    for account_id in ring:
        account = await fetch(engine, account_id)
        expected = (
            0,
            debits[account_id],
            0,
            FUNDING_PER_ACCOUNT + credits[account_id],
            1 + legs[account_id],
        )
        assert state(account) == expected, account_id
        assert account.debits_posted <= account.credits_posted, account_id
        total += account.credits_posted - account.debits_posted
    assert total == RING_SIZE * FUNDING_PER_ACCOUNT
    funding_account = await fetch(engine, funding)
    assert state(funding_account) == (0, RING_SIZE * FUNDING_PER_ACCOUNT, 0, 0, RING_SIZE)
    await assert_ledger_ok(engine)


async def test_one_id_from_ten_tasks_moves_money_once(engine: AsyncEngine) -> None:
    prefix = new_prefix()
    funding, accounts = await open_funded(engine, prefix, [f"a{i}" for i in range(5)], 0)
    for round_, account_id in enumerate(accounts):
        transfer = Transfer(f"{prefix}-dup{round_}", funding, account_id, 7, "EUR", "dup")
        results = await asyncio.gather(*(create_transfer(engine, transfer) for _ in range(10)))
        assert Counter(results) == {R.OK: 1, R.EXISTS: 9}, results
        assert state(await fetch(engine, account_id)) == (0, 0, 0, 7, 1)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT count(*) FROM ledger_transfers WHERE id = :id"),
                    {"id": transfer.id},
                )
            ).scalar_one()
            entries = (
                await conn.execute(
                    text("SELECT count(*) FROM ledger_entries WHERE transfer_id = :id"),
                    {"id": transfer.id},
                )
            ).scalar_one()
        assert (rows, entries) == (1, 2)
    assert state(await fetch(engine, funding)) == (0, 35, 0, 0, 5)
    await assert_ledger_ok(engine)


async def test_racing_posts_and_voids_resolve_a_pending_once(engine: AsyncEngine) -> None:
    prefix = new_prefix()
    funding, (account,) = await open_funded(engine, prefix, ["a"], 50)
    for round_ in range(4):
        hold = Transfer(
            f"{prefix}-hold{round_}", account, funding, 10, "EUR", "hold", TransferKind.PENDING
        )
        assert await create_transfer(engine, hold) is R.OK
        kinds = [TransferKind.POST_PENDING, TransferKind.VOID_PENDING] * 5
        resolutions = [
            Transfer(f"{hold.id}-r{i}", None, None, None, None, "resolve", kind, hold.id)
            for i, kind in enumerate(kinds)
        ]
        results = await asyncio.gather(*(create_transfer(engine, r) for r in resolutions))
        assert results.count(R.OK) == 1, results
        winner = resolutions[results.index(R.OK)].kind
        lost = (
            R.PENDING_TRANSFER_ALREADY_POSTED
            if winner is TransferKind.POST_PENDING
            else R.PENDING_TRANSFER_ALREADY_VOIDED
        )
        assert sorted(results) == sorted([R.OK] + [lost] * 9), results
    account_state = await fetch(engine, account)
    assert account_state.debits_pending == 0
    assert account_state.debits_posted in range(0, 41, 10)
    assert account_state.version == 1 + 4 * 2  # funding, then each hold and its resolution
    await assert_ledger_ok(engine)


async def test_one_failing_id_from_ten_tasks_fails_once(engine: AsyncEngine) -> None:
    prefix = new_prefix()
    funding, (account,) = await open_funded(engine, prefix, ["a"], 5)
    overdraft = Transfer(f"{prefix}-overdraft", account, funding, 6, "EUR", "too much")
    results = await asyncio.gather(*(create_transfer(engine, overdraft) for _ in range(10)))
    assert Counter(results) == {R.EXCEEDS_CREDITS: 1, R.ID_ALREADY_FAILED: 9}, results
    assert await failure_of(engine, overdraft.id) is R.EXCEEDS_CREDITS
    assert state(await fetch(engine, account)) == (0, 0, 0, 5, 1)


async def assert_refused(
    engine: AsyncEngine, statements: list[str], params: dict[str, str]
) -> None:
    """The database refuses `statements` (run in one transaction), at the latest at commit.

    Checked first with every deferred constraint made immediate, in a transaction that is
    always rolled back, so that a database accepting the tampering is not left corrupted for
    the rest of the session; then for real, where the refusal may come at commit.
    """

    def assert_not_a_typo(error: DBAPIError) -> None:
        # class 42 (syntax error, undefined column or table): the statement was wrong, not refused
        sqlstate = getattr(error.orig, "sqlstate", None) or ""
        assert not sqlstate.startswith("42"), (statements, error)

    refusal: DBAPIError | None = None
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            await conn.execute(text("SET CONSTRAINTS ALL IMMEDIATE"))
            for statement in statements:
                await conn.execute(text(statement), params)
        except DBAPIError as error:
            refusal = error
        finally:
            await transaction.rollback()
    assert refusal is not None, f"the database accepted {statements} with {params}"
    assert_not_a_typo(refusal)

    with pytest.raises(DBAPIError) as at_commit:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement), params)
    assert_not_a_typo(at_commit.value)


async def tamper_setup(engine: AsyncEngine) -> tuple[dict[str, str], list[str]]:
    """A funded account (two deposits), a funding account and a fresh account."""
    prefix = new_prefix()
    funding, (account,) = await open_funded(engine, prefix, ["a"], 0)
    fresh = f"{prefix}-fresh"
    await create_accounts(engine, [AccountSpec(fresh, "EUR", "fees")])
    first = Transfer(f"{prefix}-t1", funding, account, 40, "EUR", "deposit")
    second = Transfer(f"{prefix}-t2", funding, account, 25, "EUR", "deposit")
    assert await create_transfers(engine, [first, second]) == [R.OK, R.OK]
    async with engine.connect() as conn:
        present = (
            await conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM ledger_transfers WHERE id = :id),"
                    " (SELECT count(*) FROM ledger_entries WHERE transfer_id = :id)"
                ),
                {"id": first.id},
            )
        ).one()
    assert tuple(present) == (1, 2)  # the statements below do match rows
    return {"t": first.id, "a": account, "f": funding, "x": fresh}, [funding, account, fresh]


async def assert_untouched(
    engine: AsyncEngine, accounts: list[str], before: dict[str, tuple[int, int, int, int, int]]
) -> None:
    assert {a: state(await fetch(engine, a)) for a in accounts} == before
    await assert_ledger_ok(engine)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_transfers SET amount = amount + 1 WHERE id = :t",
        "UPDATE ledger_transfers SET code = 'forged' WHERE id = :t",
        "DELETE FROM ledger_transfers WHERE id = :t",
        "UPDATE ledger_entries SET credits_posted = credits_posted + 1 WHERE transfer_id = :t",
        "UPDATE ledger_entries SET credits_posted_delta = 41 WHERE transfer_id = :t",
        "DELETE FROM ledger_entries WHERE transfer_id = :t",
    ],
)
async def test_transfers_and_entries_cannot_be_rewritten(
    engine: AsyncEngine, statement: str
) -> None:
    params, accounts = await tamper_setup(engine)
    before = {a: state(await fetch(engine, a)) for a in accounts}
    await assert_refused(engine, [statement], params)
    await assert_untouched(engine, accounts, before)


@pytest.mark.parametrize(
    "statements",
    [
        # a balance moved without an entry, on an account without limits
        ["UPDATE ledger_accounts SET credits_posted = credits_posted + 5 WHERE id = :x"],
        ["UPDATE ledger_accounts SET debits_pending = debits_pending + 3 WHERE id = :x"],
        # the same with the version bumped as if an entry existed
        [
            "UPDATE ledger_accounts SET credits_posted = credits_posted + 5,"
            " version = version + 1 WHERE id = :x"
        ],
        # a balanced pair of moves, still without entries
        [
            "UPDATE ledger_accounts SET debits_posted = debits_posted + 5 WHERE id = :f",
            "UPDATE ledger_accounts SET credits_posted = credits_posted + 5 WHERE id = :a",
        ],
        # an account rewound to the balances of an earlier entry (undoing the second deposit)
        [
            "UPDATE ledger_accounts SET credits_posted = credits_posted - 25,"
            " version = version - 1 WHERE id = :a"
        ],
        # an account rewound to before its first entry
        [
            "UPDATE ledger_accounts SET credits_posted = 0, debits_posted = 0,"
            " debits_pending = 0, credits_pending = 0, version = 0 WHERE id = :a"
        ],
    ],
)
async def test_balances_change_only_with_an_entry(
    engine: AsyncEngine, statements: list[str]
) -> None:
    params, accounts = await tamper_setup(engine)
    before = {a: state(await fetch(engine, a)) for a in accounts}
    await assert_refused(engine, statements, params)
    await assert_untouched(engine, accounts, before)


# Rows written straight into the tables. tamper_setup leaves funding :f at version 2 (debits
# posted 65), account :a at version 2 (credits posted 65) and the fresh account :x at 0.
# FORGED is a consistent transfer :n of 5 from :f to :x, written in one statement with its
# entries and balances, as the ledger functions write; :legs and :moves stand for its entries
# and its balance updates, which each variant below breaks in one way only.
FORGED = """
    WITH transfer AS (
        INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, currency,
            code, kind) VALUES (:n, :f, :x, 5, 'EUR', 'forged', 'single')
    ), legs AS (
        INSERT INTO ledger_entries (account_id, version, transfer_id, leg, debits_pending_delta,
            debits_posted_delta, credits_pending_delta, credits_posted_delta, debits_pending,
            debits_posted, credits_pending, credits_posted)
        VALUES :legs
    )
    UPDATE ledger_accounts a
       SET debits_posted = m.debits_posted, credits_posted = m.credits_posted,
           version = m.version
      FROM (VALUES :moves) AS m(id, debits_posted, credits_posted, version)
     WHERE a.id = m.id
"""
DEBIT_LEG = "(:f, 3, :n, 'debit', 0, 5, 0, 0, 0, 70, 0, 0)"
CREDIT_LEG = "(:x, 1, :n, 'credit', 0, 0, 0, 5, 0, 0, 0, 5)"
MOVES = "(:f, 70, 0, 3), (:x, 0, 5, 1)"


def forged(legs: str = f"{DEBIT_LEG}, {CREDIT_LEG}", moves: str = MOVES) -> str:
    """FORGED with these entries and balance updates."""
    return FORGED.replace(":legs", legs).replace(":moves", moves)


async def test_a_consistent_transfer_written_in_sql_is_accepted(engine: AsyncEngine) -> None:
    """The positive control of the forgeries below: the database enforces the ledger's
    invariants, not who writes, so the unbroken forgery goes through and the ledger verifies."""
    params, _ = await tamper_setup(engine)
    params["n"] = f"{params['t']}-forged"
    async with engine.begin() as conn:
        await conn.execute(text(forged()), params)
    assert state(await fetch(engine, params["f"])) == (0, 70, 0, 0, 3)
    assert state(await fetch(engine, params["x"])) == (0, 0, 0, 5, 1)
    await assert_ledger_ok(engine)


@pytest.mark.parametrize(
    "statements",
    [
        # a transfer without entries (or balance changes)
        [
            "INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount,"
            " currency, code, kind) VALUES (:n, :f, :x, 5, 'EUR', 'forged', 'single')"
        ],
        # legs that do not balance (the credit leg and its balance say 4)
        [
            forged(
                f"{DEBIT_LEG}, (:x, 1, :n, 'credit', 0, 0, 0, 4, 0, 0, 0, 4)",
                "(:f, 70, 0, 3), (:x, 0, 4, 1)",
            )
        ],
        # the credit leg on another account than the transfer's
        [
            forged(
                f"{DEBIT_LEG}, (:a, 3, :n, 'credit', 0, 0, 0, 5, 0, 0, 0, 70)",
                "(:f, 70, 0, 3), (:a, 0, 70, 3)",
            )
        ],
        # two debit legs that cancel out (+5, -5) instead of a debit and a credit
        [
            forged(
                f"{DEBIT_LEG}, (:f, 4, :n, 'debit', 0, -5, 0, 0, 0, 65, 0, 0)",
                "(:f, 65, 0, 4)",
            )
        ],
        # entries that the balances never saw
        [forged(moves="('none', 0, 0, 0)")],
        # a running balance that does not follow from the previous entry (65 + 5 is not 71)
        [
            forged(
                f"(:f, 3, :n, 'debit', 0, 5, 0, 0, 0, 71, 0, 0), {CREDIT_LEG}",
                "(:f, 71, 0, 3), (:x, 0, 5, 1)",
            )
        ],
        # a version skipped
        [
            forged(
                f"(:f, 4, :n, 'debit', 0, 5, 0, 0, 0, 70, 0, 0), {CREDIT_LEG}",
                "(:f, 70, 0, 4), (:x, 0, 5, 1)",
            )
        ],
        # a third leg for an existing transfer
        [
            "WITH leg AS (INSERT INTO ledger_entries (account_id, version, transfer_id, leg,"
            " debits_pending_delta, debits_posted_delta, credits_pending_delta,"
            " credits_posted_delta, debits_pending, debits_posted, credits_pending,"
            " credits_posted) VALUES (:x, 1, :t, 'credit', 0, 0, 0, 5, 0, 0, 0, 5))"
            " UPDATE ledger_accounts SET credits_posted = 5, version = 1 WHERE id = :x"
        ],
        # an entry for a transfer that does not exist
        [
            "WITH leg AS (INSERT INTO ledger_entries (account_id, version, transfer_id, leg,"
            " debits_pending_delta, debits_posted_delta, credits_pending_delta,"
            " credits_posted_delta, debits_pending, debits_posted, credits_pending,"
            " credits_posted) VALUES (:x, 1, :n, 'credit', 0, 0, 0, 5, 0, 0, 0, 5))"
            " UPDATE ledger_accounts SET credits_posted = 5, version = 1 WHERE id = :x"
        ],
    ],
)
async def test_transfers_and_entries_cannot_be_forged(
    engine: AsyncEngine, statements: list[str]
) -> None:
    params, accounts = await tamper_setup(engine)
    params["n"] = f"{params['t']}-forged"
    before = {a: state(await fetch(engine, a)) for a in accounts}
    await assert_refused(engine, statements, params)
    await assert_untouched(engine, accounts, before)
