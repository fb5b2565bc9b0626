"""The recall workflow on the time-skipping test server (fake activities): a SEPA recall the
bank accepts books the return once the pacs.004 arrives; one it rejects, or leaves unanswered
past the rail's deadline, books nothing; an ACH reversal stands when no return comes within
its window and is rejected by a return or an undelivered file.

The accepted recall is told to the payment's workflow by the real `tell_payment_recalled`
(services/recalls.py) through the test server's client: delivered to an open workflow, done
for one that is closed or was never started, retried after a transient failure."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RetryConfig
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from services.recalls import tell_payment_recalled
from tests.workflows.recording import HistoryRecorder
from tests.workflows.support import role_workers, time_skipping_env
from workflows import steps
from workflows.models import (
    LedgerInput,
    LedgerResult,
    PaymentTold,
    RailEvent,
    RecallAnswer,
    RecallFundsOverdue,
    RecallInput,
    RecallOutcome,
    RecallRef,
    RecallSent,
)
from workflows.recall import RecallWorkflow, recall_workflow_id
from workflows.steps import implements

QUEUE = "recall-test"
DEADLINE = 21 * 86400.0
FUNDS_DEADLINE = 5 * 86400.0
WINDOW = 2 * 86400.0


@dataclass
class FakeBank:
    """Recalls go out; the reversal transfer and the outcome are recorded; the payment's
    workflow is told through `client` (the real signal), after `transient_failures` attempts
    that fail as an unreachable Temporal does."""

    client: Client
    sent: list[str] = field(default_factory=list)
    reversed: list[str] = field(default_factory=list)
    recorded: list[RecallOutcome] = field(default_factory=list)
    overdue: list[RecallFundsOverdue] = field(default_factory=list)
    transient_failures: int = 0
    told: list[bool] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def activities(self) -> list[Callable[..., Any]]:
        @implements(steps.SEND_RECALL)
        async def send_recall(ref: RecallRef) -> RecallSent:
            self.sent.append(ref.payment_id)
            return RecallSent(ref.payment_id)

        @implements(steps.REVERSE_PAYMENT)
        async def reverse_payment(request: LedgerInput) -> LedgerResult:
            self.reversed.append(request.payment_id)
            return LedgerResult(f"{request.payment_id}:return", "ok")

        @implements(steps.RECORD_RECALL_OUTCOME)
        async def record(outcome: RecallOutcome) -> None:
            self.recorded.append(outcome)

        @implements(steps.RECORD_RECALL_FUNDS_OVERDUE)
        async def record_overdue(overdue: RecallFundsOverdue) -> None:
            self.overdue.append(overdue)

        @implements(steps.TELL_PAYMENT_RECALLED)
        async def tell(outcome: RecallOutcome) -> PaymentTold:
            if len(self.failed) < self.transient_failures:
                try:
                    await tell_payment_recalled(await unreachable_temporal(), outcome)
                except RuntimeError as failure:
                    self.failed.append(str(failure))
                    raise
            delivered = await tell_payment_recalled(self.client, outcome)
            self.told.append(delivered)
            return PaymentTold(delivered)

        return [send_recall, reverse_payment, record, record_overdue, tell]


async def unreachable_temporal() -> Client:
    """A client of a port nobody listens on: its calls fail at once, as they do while
    Temporal is down (never NOT_FOUND)."""
    return await Client.connect("127.0.0.1:9", lazy=True, retry_config=RetryConfig(max_retries=0))


# unsandboxed: the sandbox would re-import this test module and its fixtures
@workflow.defn(name="Payment", sandboxed=False)
class StandInPayment:
    """An open payment workflow, waiting out its return window: hears the accepted recall."""

    def __init__(self) -> None:
        self.recalled: RecallOutcome | None = None

    @workflow.run
    async def run(self) -> RecallOutcome:
        await workflow.wait_condition(lambda: self.recalled is not None)
        assert self.recalled is not None
        return self.recalled

    @workflow.signal(name="recalled")
    def on_recalled(self, outcome: RecallOutcome) -> None:
        self.recalled = outcome


# recorded for tests/replay with RECORD_HISTORIES=1
RECORDER = HistoryRecorder("recall")
record_histories = RECORDER.fixture()


env = pytest.fixture(scope="module")(time_skipping_env)


def worker_for(env: WorkflowEnvironment, fake: FakeBank) -> AbstractAsyncContextManager[None]:
    """The recall workflow and the fake's activities, a worker per role queue."""
    return role_workers(env, QUEUE, RecallWorkflow, fake.activities())


async def start(
    env: WorkflowEnvironment, rail: str, reason: str = "DUPL", payment_id: str | None = None
) -> WorkflowHandle[RecallWorkflow, RecallOutcome]:
    payment_id = payment_id or f"pay_{uuid.uuid4().hex[:12]}"
    handle = await env.client.start_workflow(
        RecallWorkflow.run,
        RecallInput(
            payment_id,
            rail,
            reason,
            "acc_1",
            2_500,
            "EUR" if rail == "sepa" else "USD",
            answer_deadline_seconds=DEADLINE,
            reversal_window_seconds=WINDOW,
            funds_deadline_seconds=FUNDS_DEADLINE,
        ),
        id=recall_workflow_id(payment_id),
        task_queue=QUEUE,
    )
    return RECORDER.track(handle)


async def sent(fake: FakeBank) -> None:
    for _ in range(200):
        if fake.sent:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no recall sent")


async def test_an_accepted_sepa_recall_books_the_return_once_the_funds_arrive(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeBank(env.client)
    async with worker_for(env, fake):
        handle = await start(env, "sepa")
        await sent(fake)
        await handle.signal(RecallWorkflow.recall_answer, RecallAnswer(True))
        await handle.signal(RecallWorkflow.rail_event, RailEvent("msg", "RTRN", "FOCR"))
        outcome = await handle.result()
    payment_id = fake.sent[0]
    assert (outcome.status, outcome.reason, outcome.answer_reason) == ("accepted", "DUPL", None)
    assert fake.reversed == [payment_id]
    assert fake.recorded == [outcome]


async def accepted_with_an_open_payment(
    env: WorkflowEnvironment, fake: FakeBank
) -> tuple[RecallOutcome, RecallOutcome]:
    """An ACH recall accepted (no return within the reversal's window) while a stand-in
    payment workflow is open: the recall's outcome, and what the payment was told."""
    payment_id = f"pay_{uuid.uuid4().hex[:12]}"
    async with (
        worker_for(env, fake),
        Worker(env.client, task_queue="recall-test-payment", workflows=[StandInPayment]),
    ):
        payment = await env.client.start_workflow(
            "Payment", id=payment_id, task_queue="recall-test-payment", result_type=RecallOutcome
        )
        handle = await start(env, "ach", "TECH", payment_id)
        await sent(fake)
        await handle.signal(RecallWorkflow.rail_event, RailEvent("file", "ACCP"))
        await handle.signal(RecallWorkflow.rail_event, RailEvent("file", "ACSC"))
        return await handle.result(), await payment.result()


async def test_an_accepted_recall_tells_the_open_payment_workflow(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeBank(env.client)
    outcome, told = await accepted_with_an_open_payment(env, fake)
    assert outcome.status == "accepted"
    assert told == outcome
    assert fake.told == [True]
    # with no payment workflow open (the others here), the recall ends all the same


async def test_the_recall_is_told_again_after_a_transient_failure(
    env: WorkflowEnvironment,
) -> None:
    # Temporal unreachable on the first attempt: the activity fails and is retried, the
    # signal reaches the open payment workflow (it was dropped before recall-told-by-activity)
    fake = FakeBank(env.client, transient_failures=1)
    outcome, told = await accepted_with_an_open_payment(env, fake)
    assert len(fake.failed) == 1 and "connect" in fake.failed[0]
    assert fake.told == [True]
    assert told == outcome


async def test_a_closed_or_missing_payment_workflow_is_done_not_retried(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeBank(env.client)
    closed_id = f"pay_{uuid.uuid4().hex[:12]}"
    async with (
        worker_for(env, fake),
        Worker(env.client, task_queue="recall-test-payment", workflows=[StandInPayment]),
    ):
        # a payment workflow that closed (its return window over) before the recall ended
        closed = await env.client.start_workflow(
            "Payment", id=closed_id, task_queue="recall-test-payment", result_type=RecallOutcome
        )
        await closed.signal("recalled", RecallOutcome(closed_id, "accepted", "DUPL", "then"))
        await closed.result()
        outcomes = []
        for payment_id in (closed_id, f"pay_{uuid.uuid4().hex[:12]}"):  # closed; never started
            handle = await start(env, "ach", "TECH", payment_id)
            for _ in range(200):
                if payment_id in fake.sent:
                    break
                await asyncio.sleep(0.05)
            await handle.signal(RecallWorkflow.rail_event, RailEvent("file", "ACCP"))
            await handle.signal(RecallWorkflow.rail_event, RailEvent("file", "ACSC"))
            outcomes.append(await handle.result())
    assert [outcome.status for outcome in outcomes] == ["accepted", "accepted"]
    # told once each, and each time the answer was "nobody to tell": done
    assert fake.told == [False, False]


async def test_late_funds_of_an_accepted_recall_are_marked_overdue_and_still_booked(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeBank(env.client)
    async with worker_for(env, fake):
        handle = await start(env, "sepa")
        await sent(fake)
        await handle.signal(RecallWorkflow.recall_answer, RecallAnswer(True))
        # the funds do not come: past their deadline ops are told, the recall stays open
        await env.sleep(FUNDS_DEADLINE + 3600)
        for _ in range(200):
            if fake.overdue:
                break
            await asyncio.sleep(0.05)
        assert [o.payment_id for o in fake.overdue] == fake.sent
        assert fake.reversed == [] and fake.recorded == []
        await env.sleep(30 * 86400)  # well past every deadline: late, not lost
        await handle.signal(RecallWorkflow.rail_event, RailEvent("msg", "RTRN", "FOCR"))
        outcome = await handle.result()
    assert outcome.status == "accepted"
    assert fake.reversed == fake.sent
    assert len(fake.overdue) == 1


async def test_a_rejected_sepa_recall_books_nothing(env: WorkflowEnvironment) -> None:
    fake = FakeBank(env.client)
    async with worker_for(env, fake):
        handle = await start(env, "sepa", "CUST")
        await sent(fake)
        await handle.signal(RecallWorkflow.recall_answer, RecallAnswer(False, "LEGL"))
        # a second answer changes nothing: the first counts
        await handle.signal(RecallWorkflow.recall_answer, RecallAnswer(True))
        outcome = await handle.result()
    assert (outcome.status, outcome.answer_reason) == ("rejected", "LEGL")
    assert fake.reversed == []


async def test_an_unanswered_sepa_recall_is_rejected_at_the_deadline(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeBank(env.client)
    async with worker_for(env, fake):
        outcome = await (await start(env, "sepa")).result()
    assert (outcome.status, outcome.answer_reason) == ("rejected", "NOAS")
    assert fake.reversed == []


async def test_an_ach_reversal_without_return_stands_after_its_window(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeBank(env.client)
    async with worker_for(env, fake):
        handle = await start(env, "ach", "TECH")
        await sent(fake)
        await handle.signal(RecallWorkflow.rail_event, RailEvent("file-1", "ACCP"))
        await handle.signal(RecallWorkflow.rail_event, RailEvent("file-1", "ACSC"))
        outcome = await handle.result()
    assert outcome.status == "accepted"
    assert fake.reversed == fake.sent


@pytest.mark.parametrize(
    ("events", "code"),
    [
        ([RailEvent("file-1", "ACCP"), RailEvent("file-1", "RTRN", "R10")], "R10"),
        ([RailEvent("file-1", "RJCT", "FF01")], "FF01"),
        ([RailEvent("file-1", "NOTSENT")], "NOTSENT"),
    ],
)
async def test_an_ach_reversal_returned_or_undelivered_is_rejected(
    env: WorkflowEnvironment, events: list[RailEvent], code: str
) -> None:
    fake = FakeBank(env.client)
    async with worker_for(env, fake):
        handle = await start(env, "ach", "DUPL")
        await sent(fake)
        for event in events:
            await handle.signal(RecallWorkflow.rail_event, event)
        outcome = await handle.result()
    assert (outcome.status, outcome.answer_reason) == ("rejected", code)
    assert fake.reversed == []
