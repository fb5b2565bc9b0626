"""The ACH batch workflow on the time-skipping test server, with a fake file submission.

A window collects entries until its submit time, sends one file with all of them (in trace
number order) and tells each payment how the bank took it; stand-in payment workflows
receive those `rail_event` signals.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from ops.devstack import binary
from tests.workflows.recording import HistoryRecorder
from workflows import steps
from workflows.ach_batch import AchBatchWorkflow, batch_workflow_id
from workflows.models import (
    AchBatchInput,
    AchEntryInput,
    AchFileInput,
    AchFileResult,
    OutcomeAnswer,
    OutcomeInput,
    RailEvent,
    RefusedEntry,
)
from workflows.queues import ROLES, queue_for
from workflows.steps import implements

QUEUE = "ach-batch-test"
RECORDER = HistoryRecorder("ach_batch")
record_histories = RECORDER.fixture()


# unsandboxed: the sandbox would re-import this test module and its fixtures
@workflow.defn(name="Payment", sandboxed=False)
class StandInPayment:
    """Receives the batch's word on the file, as the payment workflow does."""

    def __init__(self) -> None:
        self.events: list[RailEvent] = []

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: bool(self.events))
        return [event.status for event in self.events]

    @workflow.signal
    def rail_event(self, event: RailEvent) -> None:
        self.events.append(event)

    @workflow.query
    def reasons(self) -> list[str | None]:
        return [event.reason_code for event in self.events]


@dataclass
class FakeBank:
    """The file submission: accepts, refuses, or records what it was sent."""

    refuse: bool = False
    # the answer never comes back (timeout past the budget): the bank may have the file
    unanswered: bool = False
    # asked afterwards, the bank has the file (received), has none (no_record), or cannot
    # be asked (None)
    bank_record: str | None = "no_record"
    # entries refused alone (by trace number): left out of the file, reported in `refused`
    refuse_alone: frozenset[str] = frozenset()
    files: list[AchFileInput] = field(default_factory=list)
    asked: list[OutcomeInput] = field(default_factory=list)

    def activities(self) -> list[Callable[..., Any]]:
        @implements(steps.SUBMIT_ACH_FILE)
        async def submit(request: AchFileInput) -> AchFileResult:
            self.files.append(request)
            if self.refuse:
                raise ApplicationError("bad batch header", type="file_refused", non_retryable=True)
            if self.unanswered:
                # non-retryable so that the test does not wait out the budget's backoff
                raise ApplicationError("read timeout", type="ReadTimeout", non_retryable=True)
            refused = [
                RefusedEntry(entry.payment_id, "RC01", "bad routing number")
                for entry in request.entries
                if entry.trace_number in self.refuse_alone
            ]
            return AchFileResult(request.batch.file_id, refused=refused)

        @implements(steps.ASK_RAIL_OUTCOME)
        async def ask(request: OutcomeInput) -> OutcomeAnswer:
            self.asked.append(request)
            if self.bank_record is None:
                raise ApplicationError("bank unreachable", non_retryable=True)
            return OutcomeAnswer(self.bank_record, request.message_id)

        return [submit, ask]


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    yield environment
    await environment.shutdown()


@contextlib.asynccontextmanager
async def worker_for(env: WorkflowEnvironment, bank: FakeBank) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for role in ROLES:
            worker = Worker(
                env.client,
                task_queue=queue_for(QUEUE, role),
                workflows=[AchBatchWorkflow, StandInPayment] if role == "payments" else [],
                activities=bank.activities(),
            )
            await stack.enter_async_context(worker)
        yield


async def open_window(env: WorkflowEnvironment) -> WorkflowHandle[AchBatchWorkflow, AchFileResult]:
    """A window whose file goes out an hour from now (test-server time)."""
    window_id = uuid.uuid4().hex[:8]
    submit_at = await env.get_current_time() + timedelta(hours=1)
    batch = AchBatchInput(window_id, submit_at.isoformat(), "2611291030", "A", f"file_{window_id}")
    handle = await env.client.start_workflow(
        AchBatchWorkflow.run, batch, id=batch_workflow_id(window_id), task_queue=QUEUE
    )
    return RECORDER.track(handle)


async def payment_joins(
    env: WorkflowEnvironment,
    batch: WorkflowHandle[AchBatchWorkflow, AchFileResult],
    trace_number: str,
) -> WorkflowHandle[Any, Any]:
    """A stand-in payment, entered in the window's file."""
    payment_id = f"pay_{uuid.uuid4().hex[:20]}"
    payment = await env.client.start_workflow(
        "Payment", id=payment_id, task_queue=QUEUE, result_type=list
    )
    entry = AchEntryInput(payment_id, trace_number, 1_000, "John Smith", "021000021", "123")
    joined = await batch.execute_update(AchBatchWorkflow.add_entry, entry)
    assert joined.trace_number == trace_number
    return payment


async def test_a_window_sends_one_file_and_tells_every_payment(env: WorkflowEnvironment) -> None:
    bank = FakeBank()
    async with worker_for(env, bank):
        batch = await open_window(env)
        second = await payment_joins(env, batch, "021000020000002")
        first = await payment_joins(env, batch, "021000020000001")
        assert sorted(await batch.query(AchBatchWorkflow.entries)) == sorted([first.id, second.id])
        result = await batch.result()  # time skips to the submit time
        assert (await first.result(), await second.result()) == (["ACCP"], ["ACCP"])
    assert result.status == "ACCP"
    (sent,) = bank.files
    assert [entry.trace_number for entry in sent.entries] == [
        "021000020000001",
        "021000020000002",
    ]


async def test_a_refused_file_rejects_its_payments(env: WorkflowEnvironment) -> None:
    bank = FakeBank(refuse=True)
    async with worker_for(env, bank):
        batch = await open_window(env)
        payment = await payment_joins(env, batch, "021000020000001")
        result = await batch.result()
        assert await payment.result() == ["RJCT"]
    assert (result.status, len(bank.files)) == ("RJCT", 1)


async def test_an_entry_refused_alone_is_rejected_alone(env: WorkflowEnvironment) -> None:
    bank = FakeBank(refuse_alone=frozenset({"021000020000002"}))
    async with worker_for(env, bank):
        batch = await open_window(env)
        kept = await payment_joins(env, batch, "021000020000001")
        refused = await payment_joins(env, batch, "021000020000002")
        result = await batch.result()
        assert await kept.result() == ["ACCP"]
        assert await refused.result() == ["RJCT"]
        reasons = await refused.query(StandInPayment.reasons)
    assert reasons == ["RC01"]
    assert result.status == "ACCP"
    assert [entry.payment_id for entry in result.refused] == [refused.id]


async def test_an_empty_window_sends_no_file(env: WorkflowEnvironment) -> None:
    bank = FakeBank()
    async with worker_for(env, bank):
        result = await (await open_window(env)).result()
    assert result.status == "EMPTY"
    assert bank.files == []


@pytest.mark.parametrize(
    ("bank_record", "told"),
    [("received", "ACCP"), ("no_record", "NOTSENT"), (None, "UNKNOWN")],
)
async def test_an_unanswered_file_is_asked_about_never_assumed_unsent(
    env: WorkflowEnvironment, bank_record: str | None, told: str
) -> None:
    """Issue #15: the bank may have stored a file whose answer was lost. The batch asks the
    bank for the file: at the bank → ACCP (the entries wait for settlement); confirmed
    absent → NOTSENT (they may join a later file); no answer → UNKNOWN (nothing is resent
    or released). Before the change every such file was NOTSENT."""
    bank = FakeBank(unanswered=True, bank_record=bank_record)
    async with worker_for(env, bank):
        batch = await open_window(env)
        payment = await payment_joins(env, batch, "021000020000001")
        result = await batch.result()
        assert await payment.result() == [told]
    assert result.status == told
    assert [(asked.rail, asked.payment_id, asked.message_id) for asked in bank.asked] == [
        ("ach", "", result.file_id)
    ]
