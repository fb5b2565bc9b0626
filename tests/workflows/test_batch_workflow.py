"""The payment batch workflow on the time-skipping test server, its activities faked at the
boundary (the real ones run against PostgreSQL in tests/integration/test_payment_batches.py):
it starts every page, follows progress until nothing is open and ends `completed`; a long
batch continues as new, each run's history small; a review is four-eyes; a cancel ends it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from tests.workflows.recording import HistoryRecorder
from tests.workflows.support import role_workers, signed, time_skipping_env, verify_review_token
from workflows.batch import PaymentBatchWorkflow
from workflows.models import (
    BatchCancelInput,
    BatchCancelResult,
    BatchInput,
    BatchPageResult,
    BatchProgress,
    BatchRef,
    BatchStatusInput,
    CancelInput,
)
from workflows.steps import (
    CANCEL_BATCH_ITEMS,
    READ_BATCH_PROGRESS,
    RECORD_BATCH_STATUS,
    START_BATCH_PAGE,
    implements,
)

QUEUE = "batch-tests"
TENANT = "ten_test"

# recorded for tests/replay with RECORD_HISTORIES=1 (make record-histories)
RECORDER = HistoryRecorder("payment_batch")
record_histories = RECORDER.fixture()


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async for environment in time_skipping_env():
        yield environment


class FakeBatch:
    """A batch of `pages` pages of 10 items whose payments finish after `reads` reads."""

    def __init__(self, pages: int, reads: int) -> None:
        self.pages = pages
        self.reads = reads
        self.started_pages = 0
        self.progress_reads = 0
        self.recorded: list[BatchStatusInput] = []
        self.canceled = False

    def activities(self) -> list[Callable[..., Any]]:
        @implements(START_BATCH_PAGE)
        async def start_batch_page(batch: BatchRef) -> BatchPageResult:
            self.started_pages += 1
            return BatchPageResult(started=10, more=self.started_pages < self.pages)

        @implements(READ_BATCH_PROGRESS)
        async def read_batch_progress(batch: BatchRef) -> BatchProgress:
            if self.canceled:
                return BatchProgress({"canceled": 10 * self.pages}, 0)
            self.progress_reads += 1
            left = max(0, self.reads - self.progress_reads)
            return BatchProgress({"settled": 10 * self.pages - left, "submitted": left}, left)

        @implements(RECORD_BATCH_STATUS)
        async def record_batch_status(change: BatchStatusInput) -> None:
            self.recorded.append(change)

        @implements(CANCEL_BATCH_ITEMS)
        async def cancel_batch_items(request: BatchCancelInput) -> BatchCancelResult:
            self.canceled = True
            return BatchCancelResult(items_canceled=10 * self.pages)

        return [
            start_batch_page,
            read_batch_progress,
            record_batch_status,
            cancel_batch_items,
            verify_review_token,
        ]


@contextlib.asynccontextmanager
async def running(env: WorkflowEnvironment, fake: FakeBatch) -> AsyncIterator[None]:
    async with role_workers(env, QUEUE, PaymentBatchWorkflow, fake.activities()):
        yield


async def start(env: WorkflowEnvironment, *, needs_review: bool, run_length: int = 400) -> Any:
    batch_id = f"bat_{uuid.uuid4().hex}"
    handle = await env.client.start_workflow(
        PaymentBatchWorkflow.run,
        BatchInput(
            batch_id, TENANT, "partner-app", needs_review=needs_review, run_length=run_length
        ),
        id=batch_id,
        task_queue=QUEUE,
    )
    return RECORDER.track(handle)


async def test_every_page_starts_then_progress_until_all_finish(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeBatch(pages=7, reads=9)
    async with running(env, fake):
        # a short run, so that the batch crosses continue-as-new
        handle = await start(env, needs_review=False, run_length=5)
        result = await handle.result()
        first_run = await env.client.get_workflow_handle(
            handle.id, run_id=handle.first_execution_run_id
        ).fetch_history()
    assert result.status == "completed"
    assert result.counts == {"settled": 70, "submitted": 0}
    assert fake.started_pages == 7
    assert [change.status for change in fake.recorded] == ["completed"]
    # the first run ended in continue-as-new after RUN_LENGTH steps: a small history
    last = first_run.events[-1].workflow_execution_continued_as_new_event_attributes
    assert last.new_execution_run_id
    assert len(first_run.events) < 60


async def test_a_batch_in_review_is_approved_once_by_another_principal(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeBatch(pages=1, reads=1)
    async with running(env, fake):
        handle = await start(env, needs_review=True)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                PaymentBatchWorkflow.review,
                signed(handle.id, "approve", "partner-app", tenant_id=TENANT),
            )
        cause = refused.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.type == "four_eyes_violation"
        assert fake.started_pages == 0
        decided = await handle.execute_update(
            PaymentBatchWorkflow.review, signed(handle.id, "approve", "ops-olga", tenant_id=TENANT)
        )
        assert decided.status == "processing"
        result = await handle.result()
    assert result.status == "completed"
    assert [(c.status, c.actor, c.decision) for c in fake.recorded] == [
        ("processing", "ops-olga", "approve"),
        ("completed", "", ""),
    ]


async def test_a_cancel_in_review_cancels_every_item(env: WorkflowEnvironment) -> None:
    fake = FakeBatch(pages=3, reads=1)
    async with running(env, fake):
        handle = await start(env, needs_review=True)
        await handle.signal(PaymentBatchWorkflow.cancel, CancelInput("partner-app", "oops"))
        result = await handle.result()
    assert (result.status, result.counts, fake.started_pages) == (
        "canceled",
        {"canceled": 30},
        0,
    )
    assert [(c.status, c.actor, c.note) for c in fake.recorded] == [
        ("canceled", "partner-app", "oops")
    ]
