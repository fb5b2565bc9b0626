"""The full verification's orchestration on the time-skipping test server (fake activities):
chunks until the end, the state carried across activities and continue-as-new, then the
finish; a stop at the first problem.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from ops.devstack import binary
from tests.workflows.recording import HistoryRecorder
from workflows import steps
from workflows.full_verification import FullVerificationWorkflow
from workflows.models import (
    FullVerifyChunksInput,
    FullVerifyFinishInput,
    FullVerifyInput,
    FullVerifyResult,
    FullVerifyState,
)
from workflows.queues import ROLES, queue_for
from workflows.steps import implements

QUEUE = "full-verification-test"
ROWS = 23


@dataclass
class FakeChunks:
    """A ledger of `ROWS` rows read `chunk_size` at a time; `broken_at` names a chunk that
    finds a problem."""

    broken_at: int | None = None
    calls: list[FullVerifyChunksInput] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    finished: list[FullVerifyState] = field(default_factory=list)

    def activities(self) -> list[Callable[..., Any]]:
        @implements(steps.VERIFY_FULL_CHUNKS)
        async def chunks(request: FullVerifyChunksInput) -> FullVerifyState:
            self.calls.append(request)
            self.run_ids.append(activity.info().workflow_run_id or "")
            state = replace(request.state, phase=request.state.phase or "entries")
            for _ in range(request.max_chunks):
                read = min(request.chunk_size, ROWS - state.rows_done)
                state = replace(
                    state,
                    rows_done=state.rows_done + read,
                    rows_total=ROWS,
                    entries=state.entries + read,
                    chunks=state.chunks + 1,
                )
                if state.chunks == self.broken_at:
                    state.problems = [
                        f"account acc_x: entry chain broken at version {state.chunks}"
                    ]
                    break
                if read < request.chunk_size:
                    state.phase = "done"
                    break
            return state

        @implements(steps.FINISH_FULL_VERIFICATION)
        async def finish(request: FullVerifyFinishInput) -> FullVerifyResult:
            self.finished.append(request.state)
            sound = not request.state.problems
            return FullVerifyResult(
                kind=request.state.kind,
                ok=sound,
                checked=request.state.describe(),
                rows=request.state.rows_done,
                problems=list(request.state.problems),
                checkpoint_id=7 if sound else None,
            )

        return [chunks, finish]


# recorded for tests/replay with RECORD_HISTORIES=1 (make record-histories)
RECORDER = HistoryRecorder("full_verification")
record_histories = RECORDER.fixture()


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    yield environment
    await environment.shutdown()


@contextlib.asynccontextmanager
async def worker_for(env: WorkflowEnvironment, fake: FakeChunks) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for role in ROLES:
            worker = Worker(
                env.client,
                task_queue=queue_for(QUEUE, role),
                workflows=[FullVerificationWorkflow] if role == "payments" else [],
                activities=fake.activities(),
            )
            await stack.enter_async_context(worker)
        yield


async def verify(env: WorkflowEnvironment, fake: FakeChunks) -> FullVerifyResult:
    async with worker_for(env, fake):
        handle = await env.client.start_workflow(
            FullVerificationWorkflow.run,
            # two chunks per activity, two activities per run: a new run every 8 rows
            FullVerifyInput(chunk_size=2, chunks_per_activity=2, activities_per_run=2),
            id=f"full-verification-{uuid.uuid4().hex[:8]}",
            task_queue=QUEUE,
        )
        return await RECORDER.track(handle).result()  # follows the continue-as-new chain


async def test_every_chunk_is_read_once_across_runs_then_the_checkpoint(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeChunks()
    result = await verify(env, fake)
    assert result.ok and result.checkpoint_id == 7
    assert result.rows == ROWS
    # each activity starts where the previous one ended, across continue-as-new
    assert [call.state.chunks for call in fake.calls] == [0, 2, 4, 6, 8, 10]
    assert len(set(fake.run_ids)) == 3
    assert [state.chunks for state in fake.finished] == [12]
    # one run key for the whole chain of runs: the first run's
    assert len({call.state.run_key for call in fake.calls}) == 1
    assert fake.calls[0].state.run_key.endswith(fake.run_ids[0])


async def test_a_problem_stops_the_verification_without_a_checkpoint(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeChunks(broken_at=5)
    result = await verify(env, fake)
    assert not result.ok and result.checkpoint_id is None
    assert result.problems == ["account acc_x: entry chain broken at version 5"]
    assert [call.state.chunks for call in fake.calls] == [0, 2, 4]
    # the finish clears what the chunks kept, and writes no checkpoint
    assert [state.chunks for state in fake.finished] == [5]
