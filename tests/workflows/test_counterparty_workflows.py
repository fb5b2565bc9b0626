"""Counterparty verification and re-screening on the time-skipping test server (fake
activities): a Verification-of-Payee answer is recorded as the outcome, an unavailable check
leaves the counterparty pending, a prenote is verified once its window passes without a
return and failed by a return or a refused file, and a re-screening pages every
counterparty once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from ops.devstack import binary
from tests.workflows.recording import HistoryRecorder
from workflows import steps
from workflows.counterparty_verification import CounterpartyVerificationWorkflow
from workflows.list_refresh import RescreenCounterpartiesWorkflow
from workflows.models import (
    CounterpartyRef,
    PayeeCheckResult,
    PrenoteResult,
    RailEvent,
    RescreenInput,
    RescreenPageInput,
    RescreenPageResult,
    VerificationOutcome,
    VerifyCounterpartyInput,
)
from workflows.queues import ROLES, queue_for
from workflows.steps import implements

QUEUE = "counterparty-test"
WINDOW = 3 * 86400.0


@dataclass
class FakeBank:
    """The payee check answers `answer` (None: the bank cannot say); prenotes go out."""

    answer: PayeeCheckResult | None = None
    # the bank cannot answer this many checks (all of each one's attempts) before `answer`
    unavailable_checks: int = 0
    attempts: int = 0
    prenotes: list[str] = field(default_factory=list)
    recorded: list[VerificationOutcome] = field(default_factory=list)
    counterparties: list[str] = field(default_factory=lambda: [f"cpt_{i:03d}" for i in range(9)])
    pages: list[RescreenPageInput] = field(default_factory=list)

    def activities(self) -> list[Callable[..., Any]]:
        @implements(steps.CHECK_PAYEE)
        async def check_payee(_: CounterpartyRef) -> PayeeCheckResult:
            self.attempts += 1
            # each check of the workflow is five attempts of the step
            if self.answer is None or self.attempts <= 5 * self.unavailable_checks:
                raise RuntimeError("payee verification not possible: NOAP")
            return self.answer

        @implements(steps.SEND_PRENOTE)
        async def send_prenote(ref: CounterpartyRef) -> PrenoteResult:
            self.prenotes.append(ref.counterparty_id)
            return PrenoteResult("file-1", "091000010000001")

        @implements(steps.RECORD_VERIFICATION)
        async def record(outcome: VerificationOutcome) -> None:
            self.recorded.append(outcome)

        @implements(steps.RESCREEN_COUNTERPARTIES_PAGE)
        async def page(request: RescreenPageInput) -> RescreenPageResult:
            self.pages.append(request)
            rows = [c for c in self.counterparties if c > request.after_id][: request.page_size]
            return RescreenPageResult(
                last_id=rows[-1] if rows else request.after_id,
                screened=len(rows),
                flagged=int("cpt_005" in rows),
                done=len(rows) < request.page_size,
            )

        return [check_payee, send_prenote, record, page]


# recorded for tests/replay with RECORD_HISTORIES=1
RECORDER = HistoryRecorder("counterparty")
record_histories = RECORDER.fixture()


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    yield environment
    await environment.shutdown()


@contextlib.asynccontextmanager
async def worker_for(env: WorkflowEnvironment, fake: FakeBank) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for role in ROLES:
            worker = Worker(
                env.client,
                task_queue=queue_for(QUEUE, role),
                workflows=[CounterpartyVerificationWorkflow, RescreenCounterpartiesWorkflow]
                if role == "payments"
                else [],
                activities=fake.activities(),
            )
            await stack.enter_async_context(worker)
        yield


async def start(
    env: WorkflowEnvironment, rail: str, retries: int = 0
) -> WorkflowHandle[CounterpartyVerificationWorkflow, VerificationOutcome]:
    counterparty_id = f"cpt_{uuid.uuid4().hex[:12]}"
    handle = await env.client.start_workflow(
        CounterpartyVerificationWorkflow.run,
        VerifyCounterpartyInput(
            counterparty_id, rail, prenote_window_seconds=WINDOW, payee_check_retries=retries
        ),
        id=counterparty_id,
        task_queue=QUEUE,
    )
    return RECORDER.track(handle)


async def prenote_sent(fake: FakeBank) -> None:
    for _ in range(200):
        if fake.prenotes:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no prenote sent")


@pytest.mark.parametrize(
    ("answer", "status", "matched"),
    [
        (PayeeCheckResult("verified"), "verified", None),
        (PayeeCheckResult("close_match", "Erika Musterfrau"), "close_match", "Erika Musterfrau"),
        (PayeeCheckResult("no_match"), "no_match", None),
    ],
)
async def test_the_payee_check_is_the_outcome(
    env: WorkflowEnvironment, answer: PayeeCheckResult, status: str, matched: str | None
) -> None:
    fake = FakeBank(answer=answer)
    async with worker_for(env, fake):
        outcome = await (await start(env, "sepa")).result()
    assert (outcome.status, outcome.method, outcome.matched_name) == (status, "vop", matched)
    assert fake.recorded == [outcome]


async def test_an_unavailable_payee_check_leaves_it_pending(env: WorkflowEnvironment) -> None:
    fake = FakeBank(answer=None)
    async with worker_for(env, fake):
        outcome = await (await start(env, "sepa")).result()
    assert outcome.status == "pending"
    assert fake.recorded == []


async def test_an_unavailable_payee_check_is_asked_again_hours_later(
    env: WorkflowEnvironment,
) -> None:
    # unavailable twice, then the bank answers: verified at the third check (1 h, then 2 h)
    fake = FakeBank(answer=PayeeCheckResult("verified"), unavailable_checks=2)
    async with worker_for(env, fake):
        outcome = await (await start(env, "sepa", retries=3)).result()
    assert (outcome.status, outcome.method) == ("verified", "vop")
    assert fake.recorded == [outcome]
    assert fake.attempts == 11
    # never answered: asked 1 + 3 times, then it stays pending
    never = FakeBank(answer=None)
    async with worker_for(env, never):
        outcome = await (await start(env, "sepa", retries=3)).result()
    assert outcome.status == "pending"
    assert (never.recorded, never.attempts) == ([], 20)


async def test_a_prenote_without_return_is_verified_after_its_window(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeBank()
    async with worker_for(env, fake):
        handle = await start(env, "ach")
        await prenote_sent(fake)
        await handle.signal(
            CounterpartyVerificationWorkflow.rail_event, RailEvent("file-1", "ACCP")
        )
        await handle.signal(
            CounterpartyVerificationWorkflow.rail_event, RailEvent("file-1", "ACSC")
        )
        outcome = await handle.result()
    assert (outcome.status, outcome.method, outcome.reason) == ("verified", "prenote", None)
    assert fake.recorded == [outcome]


@pytest.mark.parametrize(
    ("events", "reason"),
    [
        ([RailEvent("file-1", "ACCP"), RailEvent("file-1", "RTRN", "R03")], "R03"),
        # the return overtook the file's acknowledgement
        ([RailEvent("file-1", "RTRN", "R04"), RailEvent("file-1", "ACCP")], "R04"),
        ([RailEvent("file-1", "RJCT", "FF01")], "FF01"),
        ([RailEvent("file-1", "NOTSENT")], "NOTSENT"),
    ],
)
async def test_a_returned_or_undelivered_prenote_fails(
    env: WorkflowEnvironment, events: list[RailEvent], reason: str
) -> None:
    fake = FakeBank()
    async with worker_for(env, fake):
        handle = await start(env, "ach")
        await prenote_sent(fake)
        for event in events:
            await handle.signal(CounterpartyVerificationWorkflow.rail_event, event)
        outcome = await handle.result()
    assert (outcome.status, outcome.reason) == ("failed", reason)
    assert fake.recorded == [outcome]


async def test_rescreening_pages_every_counterparty_once_across_runs(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeBank()
    async with worker_for(env, fake):
        handle = await env.client.start_workflow(
            RescreenCounterpartiesWorkflow.run,
            RescreenInput({"OFAC-SDN": "v2"}, page_size=4, pages_per_run=2),
            id=f"rescreen-counterparties-{uuid.uuid4().hex[:8]}",
            task_queue=QUEUE,
        )
        totals = await RECORDER.track(handle).result()
    assert (totals.screened, totals.flagged) == (9, 1)
    assert [page.after_id for page in fake.pages] == ["", "cpt_003", "cpt_007"]
    assert len({page.run_key for page in fake.pages}) == 1
