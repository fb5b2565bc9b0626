"""The full verification in chunks (issue #23): the FullVerification workflow reads the whole
ledger or audit chain a keyset chunk at a time, resumes where a lost worker left off, names
a tampered row like the one-snapshot check, and writes a checkpoint when sound.

Each test has a database of its own, seeded through the ledger engine and the audit chain;
the workflow runs on the test stack's Temporal with a worker in this process (on a queue of
the test's own, with activities on that database), so that the test can stop it mid-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities.verification import AfterChunk, VerificationActivities
from kernel import audit, checkpoints
from kernel.temporal_client import connect
from ledger import TransferKind, create_transfer, verify_ledger
from ops.devstack import Stack, settings_env
from services.full_verification import finish, run_to_end, verify_chunks
from services.verification import verify_books
from tests.integration.test_ledger import deposit, hold, new_customer_account, resolve
from tests.integration.test_verification_checkpoints import as_superuser, record
from workflows.full_verification import FullVerificationWorkflow
from workflows.models import FullVerifyInput, FullVerifyResult, FullVerifyState
from workflows.queues import queue_for

ACCOUNTS = 6
PAYMENTS_PER_ACCOUNT = 3
RECORDS = 40
CHUNK = 7
STAGED = "SELECT count(*) FROM ledger_full_verified_accounts"


@pytest.fixture
async def seeded(isolated_database_url: str) -> AsyncIterator[AsyncEngine]:
    """A database of its own with a small sound ledger (every kind of entry chain: deposits,
    holds and their postings, on customer and system accounts) and an audit chain."""
    engine = create_async_engine(isolated_database_url, pool_size=4, max_overflow=4)
    for a in range(ACCOUNTS):
        account = await new_customer_account(engine)
        await deposit(engine, account, 10_000)
        for p in range(PAYMENTS_PER_ACCOUNT):
            payment = f"pay_{a}_{p}_{uuid.uuid4().hex[:6]}"
            await create_transfer(engine, hold(payment, account, 100 + p))
            await create_transfer(
                engine, resolve(payment, account, 100 + p, TransferKind.POST_PENDING)
            )
    await record(engine, RECORDS)
    yield engine
    await engine.dispose()


@contextlib.asynccontextmanager
async def worker(
    client: Client, queue: str, engine: AsyncEngine, after_chunk: AfterChunk | None = None
) -> AsyncIterator[Worker]:
    """The workflow on `queue`, its activities on the ledger role's queue next to it."""
    activities = VerificationActivities(engine, after_chunk)
    implementations: list[Callable[..., Any]] = [
        activities.verify_full_chunks,
        activities.finish_full_verification,
    ]
    async with (
        Worker(client, task_queue=queue, workflows=[FullVerificationWorkflow]),
        Worker(
            client,
            task_queue=queue_for(queue, "ledger"),
            activities=implementations,
        ) as ledger_worker,
    ):
        yield ledger_worker


async def start(
    client: Client, queue: str, request: FullVerifyInput
) -> WorkflowHandle[FullVerificationWorkflow, FullVerifyResult]:
    return await client.start_workflow(
        FullVerificationWorkflow.run,
        request,
        id=f"full-verification-test-{uuid.uuid4().hex[:8]}",
        task_queue=queue,
    )


async def heartbeat_recorded(handle: WorkflowHandle[Any, Any]) -> bool:
    """Whether the server has a heartbeat of the verification's running activity."""
    pending = (await handle.describe()).raw_description.pending_activities
    return any(activity.heartbeat_details.payloads for activity in pending)


async def test_chunks_of_any_size_agree_with_the_one_snapshot_check(seeded: AsyncEngine) -> None:
    whole = await verify_ledger(seeded)
    assert whole.ok
    for size in (1, CHUNK, 10_000):
        result = await run_to_end(seeded, "ledger", size, actor="test")
        assert result.ok, result.problems
        assert result.rows == whole.entries + whole.transfers
        assert (
            f"{whole.accounts} accounts, {whole.entries} entries, {whole.transfers} transfers"
            in result.checked
        )
    trail = await run_to_end(seeded, "audit", CHUNK, actor="test")
    assert trail.ok and trail.checkpoint_id is not None
    assert trail.rows > RECORDS  # the seed's records and the ledger checkpoints above


async def test_a_ledger_in_use_verifies_and_the_incremental_check_takes_over(
    seeded: AsyncEngine,
) -> None:
    """Money moves between every two chunks, on accounts before, at and after the cursor:
    each chunk compares accounts and entries in its own snapshot, so the run passes, and
    what moved behind the cursor is the next incremental run's."""
    async with seeded.connect() as conn:
        accounts = list(
            (
                await conn.execute(
                    text("SELECT id FROM ledger_accounts WHERE kind = 'customer' ORDER BY id")
                )
            ).scalars()
        )
    moved = 0

    async def pay_after_each_chunk(state: FullVerifyState) -> None:
        nonlocal moved
        account = accounts[state.chunks % len(accounts)]
        await create_transfer(seeded, hold(f"pay_live_{state.chunks}", account, 1))
        moved += 1

    state = FullVerifyState(kind="ledger", run_key="test/live")
    while not state.finished:
        state = await verify_chunks(seeded, state, 3, 1, pay_after_each_chunk)
    result = await finish(seeded, state, "test")
    assert result.ok, result.problems
    assert moved > 2 * len(accounts)  # every account was written during the run, more than once
    after = await verify_books(seeded, full=False, actor="test")
    assert after.ok and after.mode == "incremental", after.problems
    assert 0 < after.rows <= 2 * moved


async def test_the_start_cut_the_checkpoint_adopts_is_itself_verified(
    seeded: AsyncEngine,
) -> None:
    """The state recorded at the start is what a sound run hands to the incremental check:
    a chunk that finds an account's entry differ from it fails the run."""
    async with seeded.connect() as conn:
        last = (
            await conn.execute(text("SELECT max(id) FROM ledger_accounts WHERE kind = 'customer'"))
        ).scalar_one()

    async def corrupt_the_cut_after_the_first_chunk(state: FullVerifyState) -> None:
        if state.chunks == 1:
            await as_superuser(
                seeded,
                "UPDATE ledger_full_verified_accounts SET credits_posted = credits_posted + 1"
                " WHERE account_id = :a",
                a=last,
            )

    state = FullVerifyState(kind="ledger", run_key="test/cut")
    while not state.finished:
        state = await verify_chunks(seeded, state, CHUNK, 1, corrupt_the_cut_after_the_first_chunk)
    result = await finish(seeded, state, "test")
    assert not result.ok and result.checkpoint_id is None
    assert result.problems == [
        f"account {last}: its balances when the verification started differ from its entry"
        f" {1 + 2 * PAYMENTS_PER_ACCOUNT}"
    ]


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (
            "UPDATE ledger_entries SET credits_posted = 5 WHERE account_id = :a AND version = 1",
            "account {a}: entry chain broken at version 1",
        ),
        (
            "UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE id = :a",
            "account {a}: its balances when the verification started differ from its entry 7",
        ),
        (
            "DELETE FROM ledger_entries WHERE account_id = :a AND version = 7",
            "account {a}: balances (dp=0, dP=",
        ),
        (
            # (an id that sorts first: the deposit it was taken from, now one leg short, comes
            # later in transfer order)
            "UPDATE ledger_entries SET transfer_id = 'a_nowhere' WHERE account_id = :a"
            " AND version = 1",
            "transfer a_nowhere: entries of a transfer that is missing",
        ),
    ],
    ids=["entry", "account", "last-entry-removed", "orphan"],
)
async def test_chunks_name_the_tampered_row(
    seeded: AsyncEngine, tamper: str, expected: str
) -> None:
    async with seeded.connect() as conn:
        account = (
            await conn.execute(
                text(
                    "SELECT id FROM ledger_accounts WHERE kind = 'customer'"
                    " ORDER BY id LIMIT 1 OFFSET 2"
                )
            )
        ).scalar_one()
    await as_superuser(seeded, tamper, a=account)
    result = await run_to_end(seeded, "ledger", CHUNK, actor="test")
    assert not result.ok and result.checkpoint_id is None
    assert result.problems[0].startswith(expected.format(a=account)), result.problems
    async with seeded.connect() as conn:
        assert (await conn.execute(text(STAGED))).scalar_one() == 0
        assert await checkpoints.latest(conn, "ledger") is None


async def test_the_workflow_resumes_where_a_stopped_worker_left_off(
    seeded: AsyncEngine, stack: Stack
) -> None:
    client = await connect(stack.settings)
    queue = f"full-verify-{uuid.uuid4().hex[:8]}"
    seen: list[tuple[str, int]] = []
    stopped = asyncio.Event()

    async def first_worker_stops_after_four_chunks(state: FullVerifyState) -> None:
        seen.append(("first", state.chunks))
        if state.chunks == 4:
            stopped.set()
            await asyncio.Event().wait()  # the worker is stopped while this chunk is reported

    async def second_worker(state: FullVerifyState) -> None:
        seen.append(("second", state.chunks))

    # three chunks per activity, two activities per run: continue-as-new every six chunks
    request = FullVerifyInput(
        kind="ledger", chunk_size=CHUNK, chunks_per_activity=3, activities_per_run=2, actor="test"
    )
    async with worker(client, queue, seeded, first_worker_stops_after_four_chunks):
        handle = await start(client, queue, request)
        await stopped.wait()
        progress = await handle.query(FullVerificationWorkflow.progress)
        # the workflow holds the state the first activity returned: three chunks
        assert (progress.phase, progress.chunks) == ("entries", 3)
        assert 0 < progress.rows_done < progress.rows_total
        # the server holds the fourth chunk's heartbeat before the worker goes away
        while not await heartbeat_recorded(handle):
            await asyncio.sleep(0.05)
    async with worker(client, queue, seeded, second_worker):
        result = await handle.result()

    assert result.ok, result.problems
    assert result.checkpoint_id is not None
    whole = await verify_ledger(seeded)
    assert result.rows == whole.entries + whole.transfers
    resumed = [chunk for who, chunk in seen if who == "second"]
    # the second worker went on from the last chunk the first one reported: none read again
    assert resumed[0] == 5, seen
    assert resumed == list(range(5, 5 + len(resumed)))
    # more chunks than one run holds: it continued as new, with its state
    assert resumed[-1] > 2 * 3
    async with seeded.connect() as conn:
        last = await checkpoints.latest(conn, "ledger")
        kept = (await conn.execute(text(STAGED))).scalar_one()
    assert last is not None and (last.id, last.mode) == (result.checkpoint_id, "full")
    assert kept == 0  # the run's verified states went to its checkpoint
    # the checkpoint is one the incremental check continues from: nothing is new since
    after = await verify_books(seeded, full=False, actor="test")
    assert after.ok and after.mode == "incremental" and after.rows == 0


async def test_the_workflow_names_a_tampered_audit_record_and_writes_no_checkpoint(
    seeded: AsyncEngine, stack: Stack
) -> None:
    await as_superuser(seeded, "UPDATE audit_log SET subject = 'x' WHERE seq = 23")
    client = await connect(stack.settings)
    queue = f"full-verify-{uuid.uuid4().hex[:8]}"
    async with worker(client, queue, seeded):
        handle = await start(client, queue, FullVerifyInput(kind="audit", chunk_size=CHUNK))
        result = await handle.result()
    assert not result.ok
    assert result.problems == ["entry 23 (test.decided) was altered"]
    async with seeded.connect() as conn:
        assert await checkpoints.latest(conn, "audit") is None
    # and the honest chain before it verifies: the break is the first thing found
    assert (await audit.verify(seeded)).problems == result.problems


def test_the_cli_runs_the_full_verifications_as_workflows(stack: Stack) -> None:
    env = settings_env(stack.settings)
    cli = str(Path(sys.executable).parent / "payments")
    for kind, verdict in (
        ("ledger", "OK: ledger verified, full"),
        ("audit", "OK: audit trail verified, full"),
    ):
        done = subprocess.run(
            [cli, kind, "verify", "--full", "--chunk-size", "50"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert verdict in done.stdout
        assert done.stdout.startswith(verdict)
        assert "100% " in done.stderr  # the progress bar's last state
