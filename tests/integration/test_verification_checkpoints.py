"""Incremental verification from checkpoints (issue #23): `ledger verify` and `audit verify`
check what was written since the last checkpoint, catch tampering there, and leave history
before it to `--full`; every checkpoint is a record of the audit chain.

Each test has a database of its own: checkpoints and the verified state are global.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kernel import audit
from kernel.tables import audit_log
from ledger import TransferKind, create_transfer
from ops.devstack import Stack, settings_env
from services.verification import verify_audit_trail, verify_books
from tests.integration.test_ledger import deposit, hold, new_customer_account, resolve

ACTOR = "test"


@pytest.fixture
async def isolated(isolated_database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database of this test's own."""
    engine = create_async_engine(isolated_database_url, pool_size=2, max_overflow=2)
    yield engine
    await engine.dispose()


async def as_superuser(engine: AsyncEngine, statement: str, **params: Any) -> None:
    """Change a row behind the database's back (triggers off), as only a superuser can."""
    async with engine.begin() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text(statement), params)


async def record(engine: AsyncEngine, n: int) -> None:
    """Append `n` honest decisions to the audit chain."""
    for i in range(n):
        await audit.append(engine, actor=ACTOR, action="test.decided", subject=f"s{i}")


async def test_the_first_ledger_run_is_full_and_the_next_reads_only_new_entries(
    isolated: AsyncEngine,
) -> None:
    account = await new_customer_account(isolated)
    await deposit(isolated, account, 1_000)
    first = await verify_books(isolated, full=False, actor=ACTOR)
    assert first.ok and first.mode == "full" and first.checkpoint_id is not None

    await create_transfer(isolated, hold("pay_a", account, 300))
    await create_transfer(isolated, resolve("pay_a", account, 300, TransferKind.POST_PENDING))
    second = await verify_books(isolated, full=False, actor=ACTOR)
    assert second.ok, second.problems
    assert second.mode == "incremental"
    assert second.rows == 4  # two transfers, two legs each: nothing older was read
    assert second.checkpoint_id is not None and second.checkpoint_id > first.checkpoint_id

    idle = await verify_books(isolated, full=False, actor=ACTOR)
    assert idle.ok and idle.rows == 0


async def test_incremental_ledger_verify_catches_an_entry_tampered_after_the_checkpoint(
    isolated: AsyncEngine,
) -> None:
    account = await new_customer_account(isolated)
    await deposit(isolated, account, 1_000)
    assert (await verify_books(isolated, full=False, actor=ACTOR)).ok
    await create_transfer(isolated, hold("pay_b", account, 300))
    await as_superuser(
        isolated,
        "UPDATE ledger_entries SET debits_pending = 30 WHERE account_id = :a AND version = 2",
        a=account,
    )
    caught = await verify_books(isolated, full=False, actor=ACTOR)
    assert not caught.ok
    assert f"account {account}: entry chain broken at version 2" in caught.problems
    assert caught.checkpoint_id is None  # a failed run moves no checkpoint


async def test_incremental_ledger_verify_catches_a_changed_movement_after_the_checkpoint(
    isolated: AsyncEngine,
) -> None:
    account = await new_customer_account(isolated)
    await deposit(isolated, account, 1_000)
    assert (await verify_books(isolated, full=False, actor=ACTOR)).ok
    await create_transfer(isolated, hold("pay_c", account, 300))
    # the debit leg moves 1 less, and its balances and the account follow: only the
    # transfer's two legs disagree
    await as_superuser(
        isolated,
        "UPDATE ledger_entries SET debits_pending_delta = 299, debits_pending = 299"
        " WHERE account_id = :a AND version = 2",
        a=account,
    )
    await as_superuser(
        isolated, "UPDATE ledger_accounts SET debits_pending = 299 WHERE id = :a", a=account
    )
    caught = await verify_books(isolated, full=False, actor=ACTOR)
    assert "transfer pay_c:hold: 2 new entries (1 debit), debits 299 vs credits 300" in (
        caught.problems
    )


async def test_full_ledger_verify_still_catches_tampering_before_the_checkpoint(
    isolated: AsyncEngine,
) -> None:
    account = await new_customer_account(isolated)
    await deposit(isolated, account, 1_000)
    await create_transfer(isolated, hold("pay_d", account, 300))
    assert (await verify_books(isolated, full=False, actor=ACTOR)).ok
    await as_superuser(
        isolated,
        "UPDATE ledger_entries SET credits_posted = 5 WHERE account_id = :a AND version = 1",
        a=account,
    )
    # history the last checkpoint verified is the full check's to read again
    assert (await verify_books(isolated, full=False, actor=ACTOR)).ok
    full = await verify_books(isolated, full=True, actor=ACTOR)
    assert not full.ok and full.mode == "full"
    assert f"account {account}: entry chain broken at version 1" in full.problems


async def test_checkpoints_are_records_of_the_audit_chain(isolated: AsyncEngine) -> None:
    await record(isolated, 3)
    trail = await verify_audit_trail(isolated, full=False, actor=ACTOR)
    books = await verify_books(isolated, full=False, actor=ACTOR)
    assert trail.ok and books.ok
    async with isolated.connect() as conn:
        rows = (
            await conn.execute(
                select(audit_log.c.seq, audit_log.c.action, audit_log.c.detail)
                .where(audit_log.c.action.in_(["audit.checkpoint", "ledger.checkpoint"]))
                .order_by(audit_log.c.seq)
            )
        ).all()
    assert [(r.action, r.detail["checkpoint_id"]) for r in rows] == [
        ("audit.checkpoint", trail.checkpoint_id),
        ("ledger.checkpoint", books.checkpoint_id),
    ]
    # the audit checkpoint anchors the chain as it verified it: three records, before itself
    assert rows[0].seq == 4 and rows[0].detail["audit_seq"] == 3
    # and the next run verifies the two checkpoint records like any other
    after = await audit.verify_after(isolated, 3, rows[0].detail["audit_hash"])
    assert after.ok and after.entries == 2 and after.head_seq == 5


async def test_incremental_audit_verify_reads_new_records_and_catches_tampering_there(
    isolated: AsyncEngine,
) -> None:
    await record(isolated, 5)
    assert (await verify_audit_trail(isolated, full=False, actor=ACTOR)).mode == "full"
    await record(isolated, 2)
    honest = await verify_audit_trail(isolated, full=False, actor=ACTOR)
    assert honest.ok and honest.mode == "incremental"
    assert honest.rows == 3  # the previous checkpoint's record and the two new ones

    await record(isolated, 1)
    await as_superuser(
        isolated,
        "UPDATE audit_log SET actor = 'someone-else' WHERE seq = (SELECT max(seq) FROM audit_log)",
    )
    caught = await verify_audit_trail(isolated, full=False, actor=ACTOR)
    assert not caught.ok and "(test.decided) was altered" in caught.problems[0]
    assert caught.checkpoint_id is None


async def test_audit_tampering_before_the_checkpoint_is_the_full_runs_and_the_anchors(
    isolated: AsyncEngine,
) -> None:
    await record(isolated, 4)
    assert (await verify_audit_trail(isolated, full=False, actor=ACTOR)).ok
    await as_superuser(isolated, "UPDATE audit_log SET subject = 'x' WHERE seq = 2")
    full = await verify_audit_trail(isolated, full=True, actor=ACTOR)
    assert not full.ok and "entry 2 (test.decided) was altered" in full.problems[0]
    # rewriting up to the anchor (its hash included) breaks the anchor itself
    await as_superuser(isolated, "UPDATE audit_log SET hash = repeat('0', 64) WHERE seq = 4")
    anchored = await verify_audit_trail(isolated, full=False, actor=ACTOR)
    assert not anchored.ok
    assert "entry 4, the last checkpoint's anchor, was altered" in anchored.problems[0]


def test_the_cli_verifies_incrementally_after_its_first_run(
    isolated_database_url: str, database: Stack
) -> None:
    env = settings_env(database.settings.updated({"database.url": isolated_database_url}))
    cli = str(Path(sys.executable).parent / "payments")

    def run(*args: str) -> str:
        done = subprocess.run([cli, *args], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert run("ledger", "verify").startswith("OK: ledger verified, full")
    assert run("ledger", "verify").startswith("OK: ledger verified, incremental")
    assert run("audit", "verify").startswith("OK: audit trail verified, full")
    assert run("audit", "verify").startswith("OK: audit trail verified, incremental")
