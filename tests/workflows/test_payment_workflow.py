"""The payment workflow on Temporal's time-skipping test server, with same-name fake activities.

These tests pin the orchestration: which steps run in which order for each path, which
status each path ends in, and that every path that held money releases or posts it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from ops.devstack import binary
from ops.histories import activity_steps
from tests.workflows.recording import HistoryRecorder
from tests.workflows.support import signed, verify_review_token
from workflows import steps
from workflows.models import (
    CancelInput,
    Creditor,
    EscalationInput,
    KycCheckInput,
    KycCheckResult,
    LedgerInput,
    LedgerResult,
    LimitsInput,
    LimitsResult,
    OutcomeAnswer,
    OutcomeInput,
    PaymentInput,
    PaymentView,
    PollInput,
    PollResult,
    RailEvent,
    RecallClaim,
    RecallConfirmation,
    RecallOutcome,
    RecordStatusInput,
    ReviewInput,
    ScreeningHit,
    ScreeningInput,
    ScreeningResult,
    SubmitInput,
    SubmitResult,
)
from workflows.payment import PaymentWorkflow
from workflows.queues import ROLES, queue_for
from workflows.search_attributes import (
    PAYMENT_STATUS,
    REVIEW_ESCALATED,
    register_search_attributes,
)
from workflows.steps import implements

QUEUE = "payments-test"


@dataclass
class FakeBank:
    """Fake activities sharing one script of what each step answers, and a log of calls."""

    kyc_approved: bool = True
    hits: list[ScreeningHit] = field(default_factory=list)
    hold_result: str = "ok"
    submit_failures: int = 0
    poll_event: RailEvent | None = None
    # what the bank says it has of a submission whose answer was lost (received | no_record),
    # and how many times asking it fails first
    bank_record: str = "no_record"
    ask_failures: int = 0
    post_failures: int = 0
    limits_exceeded: list[str] = field(default_factory=list)
    escalations: list[float] = field(default_factory=list)
    submitted: list[SubmitInput] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    # the accepted recall the database holds for the payment (None: none; a `recalled`
    # signal is then refused), and the claims the workflow asked about
    recall_on_record: RecallConfirmation | None = None
    recall_claims: list[RecallClaim] = field(default_factory=list)

    def activities(self) -> list[Callable[..., Any]]:
        @implements(steps.CHECK_DEBTOR_KYC)
        async def kyc(_: KycCheckInput) -> KycCheckResult:
            self.calls.append("kyc")
            status = "approved" if self.kyc_approved else "rejected"
            return KycCheckResult(self.kyc_approved, status, "Ada Lovelace")

        @implements(steps.SCREEN_PARTIES)
        async def screen(_: ScreeningInput) -> ScreeningResult:
            self.calls.append("screen")
            return ScreeningResult("test-list", self.hits)

        @implements(steps.HOLD_FUNDS)
        async def hold(req: LedgerInput) -> LedgerResult:
            self.calls.append("hold")
            return LedgerResult(f"{req.payment_id}:hold", self.hold_result)

        @implements(steps.POST_HOLD)
        async def post(req: LedgerInput) -> LedgerResult:
            self.calls.append("post")
            if self.post_failures > 0:
                self.post_failures -= 1
                raise ApplicationError("hold not found", type="ledger_refused", non_retryable=True)
            return LedgerResult(f"{req.payment_id}:post", "ok")

        @implements(steps.VOID_HOLD)
        async def void(req: LedgerInput) -> LedgerResult:
            self.calls.append("void")
            return LedgerResult(f"{req.payment_id}:void", "ok")

        @implements(steps.SUBMIT_TO_RAIL)
        async def submit(req: SubmitInput) -> SubmitResult:
            self.calls.append("submit")
            self.submitted.append(req)
            if self.submit_failures > 0:
                self.submit_failures -= 1
                raise RuntimeError("bank unavailable: HTTP 503")
            return SubmitResult(req.payment_id)

        @implements(steps.POLL_RAIL_STATUS)
        async def poll(req: PollInput) -> PollResult:
            self.calls.append("poll")
            # the rail answers about the message it was asked about (as the adapters do)
            event = self.poll_event and replace(self.poll_event, message_id=req.message_id)
            return PollResult(event)

        @implements(steps.ASK_RAIL_OUTCOME)
        async def ask(req: OutcomeInput) -> OutcomeAnswer:
            self.calls.append("ask")
            if self.ask_failures > 0:
                self.ask_failures -= 1
                raise ApplicationError("bank unreachable", non_retryable=True)
            if self.bank_record == "received":
                event = self.poll_event and replace(self.poll_event, message_id=req.payment_id)
                return OutcomeAnswer("received", req.payment_id, event=event)
            return OutcomeAnswer("no_record", req.payment_id)

        @implements(steps.RECORD_PAYMENT_STATUS)
        async def record(change: RecordStatusInput) -> None:
            self.statuses.append(change.status)

        @implements(steps.CHECK_PAYMENT_LIMITS)
        async def limits(_: LimitsInput) -> LimitsResult:
            self.calls.append("limits")
            return LimitsResult(list(self.limits_exceeded), "low")

        @implements(steps.BLOCK_FUNDS)
        async def block(req: LedgerInput) -> LedgerResult:
            self.calls.append("block")
            return LedgerResult(f"{req.payment_id}:block", "ok")

        @implements(steps.REVERSE_PAYMENT)
        async def reverse(req: LedgerInput) -> LedgerResult:
            self.calls.append("reverse")
            return LedgerResult(f"{req.payment_id}:return", "ok")

        @implements(steps.RECORD_REVIEW_ESCALATION)
        async def escalate(req: EscalationInput) -> None:
            self.escalations.append(req.waited_seconds)

        # the real check reads the payment row (tests/integration/test_recalls.py)
        @implements(steps.CONFIRM_RECALL)
        async def confirm_recall(claim: RecallClaim) -> RecallConfirmation:
            self.recall_claims.append(claim)
            return self.recall_on_record or RecallConfirmation(False, refusal="no_recall")

        return [
            kyc,
            screen,
            hold,
            post,
            void,
            submit,
            poll,
            ask,
            record,
            limits,
            block,
            reverse,
            escalate,
            confirm_recall,
            verify_review_token,
        ]


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    await register_search_attributes(environment.client)
    yield environment
    await environment.shutdown()


def payment_input(payment_id: str, **overrides: object) -> PaymentInput:
    values: dict[str, object] = dict(
        payment_id=payment_id,
        tenant_id="ten_test",
        account_id="acc_test",
        customer_id="cus_test",
        amount=2_500,
        currency="EUR",
        rail="sepa",
        creditor=Creditor("Erika Mustermann", "DE", iban="DE89370400440532013000"),
        initiated_by="alice",
        rail_poll_interval_seconds=60,
        submit_max_attempts=2,
    )
    values.update(overrides)
    return PaymentInput(**values)  # type: ignore[arg-type]


async def start(
    env: WorkflowEnvironment, bank: FakeBank, worker: Worker, **overrides: object
) -> WorkflowHandle[PaymentWorkflow, PaymentView]:
    payment_id = f"pay_{uuid.uuid4().hex[:20]}"
    handle = await env.client.start_workflow(
        PaymentWorkflow.run, payment_input(payment_id, **overrides), id=payment_id, task_queue=QUEUE
    )
    return RECORDER.track(handle)


# Histories of every path, recorded into tests/replay/ with RECORD_HISTORIES=1 (make
# record-histories) and replayed by tests/replay: a non-deterministic change fails the build.
RECORDER = HistoryRecorder("payment")
record_histories = RECORDER.fixture()


@contextlib.asynccontextmanager
async def worker_for(env: WorkflowEnvironment, bank: FakeBank) -> AsyncIterator[Worker]:
    """Workers for the base queue (workflows) and every role queue (activities)."""
    async with contextlib.AsyncExitStack() as stack:
        main = None
        for role in ROLES:
            worker = Worker(
                env.client,
                task_queue=queue_for(QUEUE, role),
                workflows=[PaymentWorkflow] if role == "payments" else [],
                activities=bank.activities(),
            )
            await stack.enter_async_context(worker)
            main = main or worker
        assert main is not None
        yield main


async def wait_status(handle: WorkflowHandle[PaymentWorkflow, PaymentView], status: str) -> None:
    for _ in range(200):
        view = await handle.query(PaymentWorkflow.status)
        if view.status == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"payment never reached {status}")


async def test_happy_path_settles_on_the_rail_callback(env: WorkflowEnvironment) -> None:
    bank = FakeBank()
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        await wait_status(handle, "submitted")
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACCP"))  # ignored
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "RJCT", "AC04"))
        view = await handle.result()
    assert view.status == "settled"
    assert view.failure is None
    assert bank.calls == ["kyc", "screen", "limits", "hold", "submit", "post"]
    assert bank.statuses == ["submitted", "settled"]
    assert [change.status for change in view.history] == ["submitted", "settled"]
    # one patch marker (and one TemporalChangeVersion upsert) stands for all the payment's
    # patches: each marker is a history event and its upsert a visibility write
    history = await handle.fetch_history()
    markers = [
        e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data
        for e in history.events
        if e.marker_recorded_event_attributes.marker_name == "core_patch"
    ]
    assert len(markers) == 1 and b"payment-patches-as-one" in markers[0]


async def test_a_scheduled_payment_waits_then_runs_the_ordinary_path(
    env: WorkflowEnvironment,
) -> None:
    bank = FakeBank(poll_event=RailEvent("x", "ACSC"))
    execute_at = await env.get_current_time() + timedelta(days=3)
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker, execute_at=execute_at.isoformat())
        assert (await handle.query(PaymentWorkflow.status)).status == "scheduled"
        view = await handle.result()  # time skips past execute_at, then the poll timer
    assert view.status == "settled"
    # nothing was checked or held before execute_at: the checks run at execution
    assert bank.calls == ["kyc", "screen", "limits", "hold", "submit", "poll", "post"]
    assert bank.statuses == ["processing", "submitted", "settled"]
    assert datetime.fromisoformat(view.history[0].at) >= execute_at


async def test_a_canceled_scheduled_payment_never_moves_money(env: WorkflowEnvironment) -> None:
    bank = FakeBank()
    execute_at = await env.get_current_time() + timedelta(days=30)
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker, execute_at=execute_at.isoformat())
        await handle.signal(PaymentWorkflow.cancel, CancelInput("alice", "not needed"))
        view = await handle.result()
    assert view.status == "canceled"
    assert view.failure is not None and view.failure.code == "canceled"
    assert bank.calls == []  # no check, no hold, no void: nothing was ever reserved
    assert bank.statuses == ["canceled"]
    assert datetime.fromisoformat(view.history[0].at) < execute_at


async def test_rail_rejection_voids_the_hold_and_keeps_the_reason(env: WorkflowEnvironment) -> None:
    bank = FakeBank()
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        await wait_status(handle, "submitted")
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "RJCT", "AC04"))
        view = await handle.result()
    assert view.status == "failed"
    assert view.failure is not None
    assert (view.failure.code, view.failure.reason_code) == ("rail_rejected", "AC04")
    assert bank.calls == ["kyc", "screen", "limits", "hold", "submit", "void"]


async def test_no_callback_falls_back_to_polling(env: WorkflowEnvironment) -> None:
    bank = FakeBank(poll_event=RailEvent("x", "ACSC"))
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        view = await handle.result()  # time skips past the poll timer
    assert view.status == "settled"
    assert bank.calls == ["kyc", "screen", "limits", "hold", "submit", "poll", "post"]


async def test_insufficient_funds_fails_without_submitting(env: WorkflowEnvironment) -> None:
    bank = FakeBank(hold_result="exceeds_credits")
    async with worker_for(env, bank) as worker:
        view = await (await start(env, bank, worker)).result()
    assert view.status == "failed"
    assert view.failure is not None and view.failure.code == "insufficient_funds"
    assert bank.calls == ["kyc", "screen", "limits", "hold"]


async def test_kyc_not_approved_is_rejected_before_any_money_moves(
    env: WorkflowEnvironment,
) -> None:
    bank = FakeBank(kyc_approved=False)
    async with worker_for(env, bank) as worker:
        view = await (await start(env, bank, worker)).result()
    assert view.status == "rejected"
    assert view.failure is not None and view.failure.code == "kyc_not_approved"
    assert bank.calls == ["kyc"]


HIT = ScreeningHit("creditor", "OFAC-SDN", "test-list", "306", "BANCO NACIONAL DE CUBA", 1.0)


async def test_screening_hit_waits_for_review_then_approval_settles(
    env: WorkflowEnvironment,
) -> None:
    bank = FakeBank(hits=[HIT])
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        await wait_status(handle, "in_review")
        # the money is held before the review, so a confirmed hit can block it
        assert bank.calls == ["kyc", "screen", "limits", "hold"]
        view = await handle.query(PaymentWorkflow.status)
        assert view.screening_hits[0].entity_id == "306"
        # four-eyes: the initiator cannot review their own payment
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                PaymentWorkflow.review, signed(handle.id, "approve", "alice")
            )
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.type == "four_eyes_violation"
        result = await handle.execute_update(
            PaymentWorkflow.review, signed(handle.id, "approve", "bob")
        )
        assert result.status == "processing"
        await wait_status(handle, "submitted")
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        view = await handle.result()
    assert view.status == "settled"
    assert bank.statuses == ["in_review", "processing", "submitted", "settled"]
    # KYC is checked again after the review
    assert bank.calls == ["kyc", "screen", "limits", "hold", "kyc", "submit", "post"]


async def test_a_review_without_the_apis_token_is_refused_and_the_money_stays_held(
    env: WorkflowEnvironment,
) -> None:
    bank = FakeBank(hits=[HIT])
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        await wait_status(handle, "in_review")
        forged = [
            # straight to Temporal, a made-up reviewer and no token
            ReviewInput("approve", "mallory"),
            # a token the API minted for a rejection, replayed as an approval
            replace(signed(handle.id, "reject", "bob"), decision="approve"),
            # a token minted for another payment
            signed("pay_other", "approve", "bob"),
            # bob's token claimed by someone else
            replace(signed(handle.id, "approve", "bob"), reviewer_id="ten_test:mallory"),
            # the initiator's own token: four-eyes compares who the token names
            replace(signed(handle.id, "approve", "alice"), reviewer="alice2"),
        ]
        refusals = []
        for review in forged:
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(PaymentWorkflow.review, review)
            assert isinstance(refused.value.cause, ApplicationError)
            refusals.append(refused.value.cause.type)
        assert refusals == ["review_token_invalid"] * 4 + ["four_eyes_violation"]
        view = await handle.query(PaymentWorkflow.status)
        assert view.status == "in_review"
        # nothing moved: the money is held, nothing was submitted
        assert bank.calls == ["kyc", "screen", "limits", "hold"]
        result = await handle.execute_update(
            PaymentWorkflow.review, signed(handle.id, "reject", "bob", "true match")
        )
        assert result.status == "rejected"


async def test_review_rejection_of_a_hit_blocks_the_funds(
    env: WorkflowEnvironment,
) -> None:
    bank = FakeBank(hits=[HIT])
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        await wait_status(handle, "in_review")
        result = await handle.execute_update(
            PaymentWorkflow.review, signed(handle.id, "reject", "bob", "true match")
        )
        view = await handle.result()
    assert result.status == "rejected"
    assert view.failure is not None and view.failure.code == "sanctions_rejected"
    # OFAC blocking: the held money goes to the blocked-funds account, not back
    assert bank.calls == ["kyc", "screen", "limits", "hold", "block"]


async def test_review_outside_in_review_is_refused(env: WorkflowEnvironment) -> None:
    bank = FakeBank()
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        await wait_status(handle, "submitted")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(PaymentWorkflow.review, signed(handle.id, "approve", "bob"))
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.type == "invalid_state"
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        await handle.result()


async def test_unreachable_rail_waits_for_ops_retry(env: WorkflowEnvironment) -> None:
    bank = FakeBank(submit_failures=2)  # the whole budget of 2 attempts fails
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        await wait_status(handle, "action_required")
        # the bank, asked, has no record: a retry may send again
        waiting = await handle.query(PaymentWorkflow.status)
        assert waiting.action_reason == "rail_unreachable"
        await handle.signal(PaymentWorkflow.retry)
        await wait_status(handle, "submitted")
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        view = await handle.result()
    assert view.status == "settled"
    assert bank.calls == [
        *("kyc", "screen", "limits", "hold", "submit", "submit", "ask", "submit", "post")
    ]
    assert bank.statuses == ["action_required", "processing", "submitted", "settled"]


async def test_cancel_in_action_required_voids_the_hold(env: WorkflowEnvironment) -> None:
    bank = FakeBank(submit_failures=10)
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        await wait_status(handle, "action_required")
        await handle.signal(PaymentWorkflow.cancel, CancelInput("ops-bob", "customer asked"))
        view = await handle.result()
    assert view.status == "canceled"
    assert bank.calls[-1] == "void"
    assert bank.calls.count("hold") == 1 and bank.calls.count("void") == 1


async def test_status_query_and_search_attribute_follow_transitions(
    env: WorkflowEnvironment,
) -> None:
    bank = FakeBank()
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        await wait_status(handle, "submitted")
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        await handle.result()
        description = await handle.describe()
    assert description.typed_search_attributes.get(PAYMENT_STATUS) == "settled"


async def test_kyc_lapsed_during_review_rejects_after_approval(env: WorkflowEnvironment) -> None:
    bank = FakeBank(hits=[HIT])
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        await wait_status(handle, "in_review")
        bank.kyc_approved = False  # e.g. the customer's KYC review date passed
        await handle.execute_update(PaymentWorkflow.review, signed(handle.id, "approve", "bob"))
        view = await handle.result()
    assert view.status == "rejected"
    assert view.failure is not None and view.failure.code == "kyc_not_approved"
    assert bank.calls == ["kyc", "screen", "limits", "hold", "kyc", "void"]  # hold released


async def test_velocity_limit_sends_to_review_and_rejection_releases_the_hold(
    env: WorkflowEnvironment,
) -> None:
    bank = FakeBank(limits_exceeded=["daily amount limit 100 exceeded"])
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        await wait_status(handle, "in_review")
        await handle.execute_update(PaymentWorkflow.review, signed(handle.id, "reject", "bob"))
        view = await handle.result()
    assert view.status == "rejected"
    assert view.failure is not None and view.failure.code == "limit_exceeded"
    assert bank.calls == ["kyc", "screen", "limits", "hold", "void"]


async def test_stale_review_is_escalated_never_decided(env: WorkflowEnvironment) -> None:
    bank = FakeBank(hits=[HIT])
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker, review_escalation_seconds=3600)
        await wait_status(handle, "in_review")
        await env.sleep(7200)  # two hours pass without a reviewer
        for _ in range(100):
            if bank.escalations:
                break
            await asyncio.sleep(0.05)
        assert bank.escalations == [3600]
        description = await handle.describe()
        assert description.typed_search_attributes.get(REVIEW_ESCALATED) is True
        assert (await handle.query(PaymentWorkflow.status)).status == "in_review"
        await handle.execute_update(PaymentWorkflow.review, signed(handle.id, "approve", "bob"))
        await wait_status(handle, "submitted")
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        view = await handle.result()
    assert view.status == "settled"


ACH = dict(
    rail="ach",
    currency="USD",
    creditor=Creditor("John Smith", "US", routing_number="021000021", account_number="12345678"),
    return_window_seconds=7200,
)


async def file_accepted(handle: WorkflowHandle[PaymentWorkflow, PaymentView]) -> None:
    """The ACH batch workflow's word that the window's file reached the bank."""
    await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACCP"))
    await wait_status(handle, "submitted")


async def test_ach_return_after_settlement_credits_the_debtor(env: WorkflowEnvironment) -> None:
    bank = FakeBank()
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker, **ACH)
        await file_accepted(handle)
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        await wait_status(handle, "settled")
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "RTRN", "R01"))
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "RTRN", "R01"))
        view = await handle.result()
    assert view.status == "returned"
    assert view.failure is not None
    assert (view.failure.code, view.failure.reason_code) == ("rail_returned", "R01")
    assert bank.calls == ["kyc", "screen", "limits", "hold", "submit", "post", "reverse"]
    assert bank.statuses == ["submitted", "settled", "returned"]


async def test_ach_return_overtaking_settlement_still_posts_then_reverses(
    env: WorkflowEnvironment,
) -> None:
    bank = FakeBank()
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker, **ACH)
        await file_accepted(handle)
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "RTRN", "R03"))
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        view = await handle.result()
    assert view.status == "returned"
    assert bank.calls[-2:] == ["post", "reverse"]


async def test_ach_without_return_stays_settled_after_the_window(env: WorkflowEnvironment) -> None:
    bank = FakeBank()
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker, **ACH)
        await file_accepted(handle)
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        view = await handle.result()  # time skips over the return window
    assert view.status == "settled"
    # one last look at the bank when the window closes, in case a return callback was lost
    assert bank.calls == ["kyc", "screen", "limits", "hold", "submit", "post", "poll"]


# its recorded history (before recall-confirmed) is the old side of that patch: not recorded again
async def test_an_accepted_recall_ends_the_open_payment_returned(
    env: WorkflowEnvironment,
) -> None:
    bank = FakeBank(recall_on_record=RecallConfirmation(True, "DUPL", "2026-12-07T12:00:00+00:00"))
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker, **ACH)
        await file_accepted(handle)
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        await wait_status(handle, "settled")
        # another payment's outcome, or a rejected recall, ends nothing
        other = RecallOutcome("pay_other", "accepted", "DUPL", "2026-12-07T12:00:00+00:00")
        await handle.signal(PaymentWorkflow.recalled, other)
        await handle.signal(
            PaymentWorkflow.recalled, replace(other, payment_id=handle.id, status="rejected")
        )
        await handle.signal(PaymentWorkflow.recalled, replace(other, payment_id=handle.id))
        view = await handle.result()
        description = await handle.describe()
    assert view.status == "returned"
    assert view.failure is not None
    assert (view.failure.code, view.failure.reason_code) == ("recalled", "DUPL")
    assert description.typed_search_attributes.get(PAYMENT_STATUS) == "returned"
    # the recall's unit of work recorded `returned` and credited the debtor: nothing twice
    assert bank.calls == ["kyc", "screen", "limits", "hold", "submit", "post"]
    assert bank.statuses == ["submitted", "settled"]


async def test_a_forged_recall_signal_is_refused_and_a_later_return_still_books(
    env: WorkflowEnvironment,
) -> None:
    # no accepted recall on record: someone signaled `recalled` straight through Temporal
    bank = FakeBank()
    forged = RecallOutcome("", "accepted", "FRAD", "2026-12-07T12:00:00+00:00")
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker, **ACH)
        await file_accepted(handle)
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        await wait_status(handle, "settled")
        await handle.signal(PaymentWorkflow.recalled, replace(forged, payment_id=handle.id))
        for _ in range(200):
            if bank.recall_claims:
                break
            await asyncio.sleep(0.05)
        # checked, refused: the payment still waits out its return window
        assert [c.claim.reason for c in bank.recall_claims] == ["FRAD"]
        assert (await handle.query(PaymentWorkflow.status)).status == "settled"
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "RTRN", "R01"))
        view = await handle.result()
        description = await handle.describe()
    assert view.status == "returned"
    assert view.failure is not None
    assert (view.failure.code, view.failure.reason_code) == ("rail_returned", "R01")
    assert description.typed_search_attributes.get(PAYMENT_STATUS) == "returned"
    # the real return credited the debtor, once
    assert bank.calls == ["kyc", "screen", "limits", "hold", "submit", "post", "reverse"]
    assert bank.statuses == ["submitted", "settled", "returned"]
    [claim] = bank.recall_claims
    assert (claim.payment_id, claim.tenant_id) == (handle.id, "ten_test")


async def test_a_forged_recall_signal_leaves_the_window_to_run_out_settled(
    env: WorkflowEnvironment,
) -> None:
    bank = FakeBank()
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker, **ACH)
        await file_accepted(handle)
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        await wait_status(handle, "settled")
        claim = RecallOutcome(handle.id, "accepted", "DUPL", "2026-12-07T12:00:00+00:00")
        await handle.signal(PaymentWorkflow.recalled, claim)
        view = await handle.result()  # time skips over what is left of the window
    assert view.status == "settled" and view.failure is None
    assert len(bank.recall_claims) == 1
    # the last look at the bank when the window closes, as without the claim
    assert bank.calls == ["kyc", "screen", "limits", "hold", "submit", "post", "poll"]


async def test_a_confirmed_recall_is_adopted_as_the_database_recorded_it(
    env: WorkflowEnvironment,
) -> None:
    answered_at = "2026-12-07T15:30:00+00:00"
    bank = FakeBank(recall_on_record=RecallConfirmation(True, "TECH", answered_at))
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker, **ACH)
        await file_accepted(handle)
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        await wait_status(handle, "settled")
        # what the signal says of the recall is not taken: the database's record is
        claim = RecallOutcome(handle.id, "accepted", "DUPL", "2026-12-07T12:00:00+00:00")
        await handle.signal(PaymentWorkflow.recalled, claim)
        view = await handle.result()
    assert view.status == "returned"
    assert view.failure is not None
    assert (view.failure.code, view.failure.reason_code) == ("recalled", "TECH")
    assert view.history[-1].at == answered_at
    assert len(bank.recall_claims) == 1
    # the recall's unit of work recorded `returned` and credited the debtor: nothing twice
    assert bank.calls == ["kyc", "screen", "limits", "hold", "submit", "post"]
    assert bank.statuses == ["submitted", "settled"]


SEPA_WITH_RETURNS = {"sepa_return_window_seconds": 5 * 86400.0}


async def test_sepa_return_after_settlement_credits_the_debtor(env: WorkflowEnvironment) -> None:
    bank = FakeBank()
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker, **SEPA_WITH_RETURNS)
        await wait_status(handle, "submitted")
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        await wait_status(handle, "settled")
        # a pacs.004 for another message is not ours; the second copy of ours is harmless
        await handle.signal(PaymentWorkflow.rail_event, RailEvent("other", "RTRN", "AC06"))
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "RTRN", "MD07"))
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "RTRN", "MD07"))
        view = await handle.result()
    assert view.status == "returned"
    assert view.failure is not None
    assert (view.failure.code, view.failure.reason_code) == ("rail_returned", "MD07")
    assert bank.calls == ["kyc", "screen", "limits", "hold", "submit", "post", "reverse"]
    assert bank.statuses == ["submitted", "settled", "returned"]


async def test_sepa_without_return_stays_settled_after_the_window(
    env: WorkflowEnvironment,
) -> None:
    bank = FakeBank()
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker, **SEPA_WITH_RETURNS)
        await wait_status(handle, "submitted")
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        view = await handle.result()  # time skips over the return window
    assert view.status == "settled"
    assert bank.calls == ["kyc", "screen", "limits", "hold", "submit", "post", "poll"]


async def test_ach_file_never_sent_waits_for_ops_then_joins_a_later_file(
    env: WorkflowEnvironment,
) -> None:
    bank = FakeBank()
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker, **ACH)
        for _ in range(100):
            if bank.submitted:
                break
            await asyncio.sleep(0.05)
        # the batch workflow gave up on the bank: this file never reached it
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "NOTSENT"))
        await wait_status(handle, "action_required")
        await handle.signal(PaymentWorkflow.retry)
        await wait_status(handle, "processing")
        for _ in range(100):
            if len(bank.submitted) == 2:
                break
            await asyncio.sleep(0.05)
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACCP"))
        await wait_status(handle, "submitted")
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        view = await handle.result()
    assert view.status == "settled"
    # the second submission may not reuse the file that never went out
    assert [s.not_in_file for s in bank.submitted] == ["", handle.id]
    assert bank.statuses == ["action_required", "processing", "submitted", "settled"]


async def test_unsplit_queues_run_every_activity_on_the_payment_queue(
    env: WorkflowEnvironment,
) -> None:
    bank = FakeBank()
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker, split_activity_queues=False)
        await wait_status(handle, "submitted")
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        view = await handle.result()
        history = await handle.fetch_history()
    assert view.status == "settled"
    steps = activity_steps(history)
    assert {step.task_queue for step in steps if not step.local} == {QUEUE}
    # read-only checks and status records run in the workflow's worker, the rest as tasks
    assert [(step.activity, step.local) for step in steps] == [
        ("check_debtor_kyc", True),
        ("screen_parties", False),
        ("check_payment_limits", True),
        ("hold_funds", False),
        ("submit_to_rail", False),
        ("record_payment_status", True),
        ("post_hold", False),
        ("record_payment_status", True),
    ]


async def test_split_queues_keep_checks_on_the_compliance_queue(env: WorkflowEnvironment) -> None:
    bank = FakeBank()
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker, split_activity_queues=True)
        await wait_status(handle, "submitted")
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        assert (await handle.result()).status == "settled"
        history = await handle.fetch_history()
    # with one worker per role, only the status records may run in the workflow's worker
    assert [(step.activity, step.local, step.task_queue) for step in activity_steps(history)] == [
        ("check_debtor_kyc", False, f"{QUEUE}-compliance"),
        ("screen_parties", False, f"{QUEUE}-compliance"),
        ("check_payment_limits", False, f"{QUEUE}-compliance"),
        ("hold_funds", False, f"{QUEUE}-ledger"),
        ("submit_to_rail", False, f"{QUEUE}-rails"),
        ("record_payment_status", True, ""),
        ("post_hold", False, f"{QUEUE}-ledger"),
        ("record_payment_status", True, ""),
    ]


# --- issue #15: the outcome unknown, cancels, rail events that must match, ledger refusals --


async def test_a_lost_answer_is_asked_about_and_a_stored_payment_is_never_resent(
    env: WorkflowEnvironment,
) -> None:
    """Every submission timed out, but the bank had stored it: the payment asks and goes on
    as submitted, without ops and without a second submission."""
    bank = FakeBank(submit_failures=2, bank_record="received")
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        await wait_status(handle, "submitted")
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        view = await handle.result()
    assert view.status == "settled"
    assert bank.calls.count("submit") == 2
    assert bank.calls[-2:] == ["ask", "post"]
    assert "action_required" not in bank.statuses


async def test_an_unknown_outcome_keeps_the_hold_until_the_bank_answers(
    env: WorkflowEnvironment,
) -> None:
    """Neither the submission nor the question got an answer: action_required
    (outcome_unknown), the hold stays; a retry asks again (not a resend); the bank has it."""
    bank = FakeBank(submit_failures=2, ask_failures=1, bank_record="received")
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        await wait_status(handle, "action_required")
        waiting = await handle.query(PaymentWorkflow.status)
        assert waiting.action_reason == "outcome_unknown"
        await handle.signal(PaymentWorkflow.retry)
        await wait_status(handle, "submitted")
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        view = await handle.result()
    assert view.status == "settled"
    assert bank.calls.count("submit") == 2  # never sent again
    assert "void" not in bank.calls
    assert bank.statuses == ["action_required", "submitted", "settled"]


async def test_a_cancel_while_the_outcome_is_unknown_waits_for_the_bank(
    env: WorkflowEnvironment,
) -> None:
    """A cancel in outcome_unknown does not void the hold: the workflow asks the bank; the
    bank has the payment, so it is not canceled and settles."""
    bank = FakeBank(submit_failures=2, ask_failures=1, bank_record="received")
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        await wait_status(handle, "action_required")
        await handle.signal(PaymentWorkflow.cancel, CancelInput("ops-bob", "customer asked"))
        await wait_status(handle, "submitted")
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        view = await handle.result()
    assert view.status == "settled"
    assert "void" not in bank.calls


async def test_a_cancel_goes_through_once_the_bank_has_no_record(env: WorkflowEnvironment) -> None:
    bank = FakeBank(submit_failures=2, ask_failures=1, bank_record="no_record")
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        await wait_status(handle, "action_required")
        await handle.signal(PaymentWorkflow.cancel, CancelInput("ops-bob", "customer asked"))
        view = await handle.result()
    assert view.status == "canceled"
    assert bank.calls[-2:] == ["ask", "void"]
    assert bank.calls.count("submit") == 2


async def test_an_unknown_outcome_is_asked_again_without_ops(env: WorkflowEnvironment) -> None:
    """While the outcome is unknown the workflow asks the bank again by itself (backing off
    from the poll interval); once the bank answers that it has the payment, it goes on."""
    settled = RailEvent("", "ACSC")
    bank = FakeBank(submit_failures=2, ask_failures=2, bank_record="received", poll_event=settled)
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        view = await handle.result()  # time skips over the waits
    assert view.status == "settled"
    assert bank.calls.count("ask") == 3
    assert bank.calls.count("submit") == 2


async def test_no_cancel_during_a_sanctions_review(env: WorkflowEnvironment) -> None:
    """The initiator's cancel of a payment held for a screening hit is ignored: the review
    decides, and a rejection blocks the money (OFAC) instead of releasing it."""
    bank = FakeBank(hits=[HIT])
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        await wait_status(handle, "in_review")
        await handle.signal(PaymentWorkflow.cancel, CancelInput("alice", "never mind"))
        await handle.execute_update(
            PaymentWorkflow.review, signed(handle.id, "reject", "carol", "")
        )
        view = await handle.result()
    assert view.status == "rejected"
    assert view.failure is not None and view.failure.code == "sanctions_rejected"
    assert "block" in bank.calls and "void" not in bank.calls


async def test_rail_events_must_name_the_payments_own_message(env: WorkflowEnvironment) -> None:
    """A settlement naming another message is ignored; a return before settlement waits for
    it (and a rejection after it changes nothing)."""
    bank = FakeBank()
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker, sepa_return_window_seconds=3600)
        await wait_status(handle, "submitted")
        await handle.signal(PaymentWorkflow.rail_event, RailEvent("someone-else", "ACSC"))
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "RTRN", "AC04"))
        await asyncio.sleep(0.3)
        assert (await handle.query(PaymentWorkflow.status)).status == "submitted"
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        view = await handle.result()
    assert view.status == "returned"
    assert bank.calls[-2:] == ["post", "reverse"]


async def test_a_ledger_refusal_after_the_bank_paid_waits_for_ops(env: WorkflowEnvironment) -> None:
    """The bank settled but the ledger refused the post: never a failed workflow; the payment
    waits in action_required (ledger_out_of_sync), refuses a cancel, and a retry posts."""
    bank = FakeBank(post_failures=1)
    async with worker_for(env, bank) as worker:
        handle = await start(env, bank, worker)
        await wait_status(handle, "submitted")
        await handle.signal(PaymentWorkflow.rail_event, RailEvent(handle.id, "ACSC"))
        await wait_status(handle, "action_required")
        waiting = await handle.query(PaymentWorkflow.status)
        assert waiting.action_reason == "ledger_out_of_sync"
        await handle.signal(PaymentWorkflow.cancel, CancelInput("ops-bob", "no"))  # ignored
        await handle.signal(PaymentWorkflow.retry)
        view = await handle.result()
    assert view.status == "settled"
    assert bank.calls.count("post") == 2 and "void" not in bank.calls
    assert bank.statuses == ["submitted", "action_required", "submitted", "settled"]
