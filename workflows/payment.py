"""The payment workflow (DESIGN §3): one workflow per payment, id = payment id.

KYC of the debtor → sanctions screening → velocity limits → ledger hold → (review) → rail
submit → wait for the rail's status (signal from the callback, timer-driven poll as
fallback) → post or void → (wait out the rail's return window; a return credits the debtor).
Every failure path leaves the hold released, except a confirmed sanctions hit, whose money
moves to the blocked-funds account; each ledger step carries a transfer id derived from the
payment id, so a retried activity never moves money twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import search_attributes as sa
    from workflows import steps
    from workflows.models.common import ReviewInput, ReviewResult, ScreeningHit
    from workflows.models.payment import (
        CancelInput,
        EscalationInput,
        Failure,
        KycCheckInput,
        KycCheckResult,
        LedgerInput,
        LimitsInput,
        OpsDecision,
        PaymentInput,
        PaymentView,
        PollInput,
        RailEvent,
        RecordStatusInput,
        RetryInput,
        ScreeningInput,
        StatusChange,
        SubmitInput,
    )
    from workflows.models.vocabulary import (
        CANCELABLE_STATUSES,
        FINAL_RAIL_STATUSES,
        FailureCode,
        PaymentStatus,
        RailStatus,
        ReviewDecision,
    )
    from workflows.patches import (
        ADOPT_STATUS_BEFORE_PERSISTING,
        LIMITS_AND_BLOCKING,
        LOCAL_STEPS,
        SEPA_RETURNS,
        is_patched,
    )
    from workflows.payment_legacy import run_review_before_hold
    from workflows.steps import Step

# activities/rails.py and api/routers/rails.py import it from here
RETURNED = RailStatus.RETURNED
InputT = TypeVar("InputT")
ResultT = TypeVar("ResultT")
# The transitions a person's decision can cause: the decision is audited with the first of
# them (a decision that causes none, e.g. a cancel overtaken by a failure, changed nothing).
DECISION_CAUSES = {
    "review": (PaymentStatus.PROCESSING, PaymentStatus.REJECTED),
    "cancel": (PaymentStatus.CANCELED,),
    "retry": (PaymentStatus.PROCESSING,),
}


@workflow.defn(name="Payment")
class PaymentWorkflow:
    """Orchestrates one payment; see the module docstring."""

    @workflow.init
    def __init__(self, payment: PaymentInput) -> None:
        self._payment = payment
        self._status = PaymentStatus.PROCESSING
        self._seq = 0
        self._history: list[StatusChange] = []
        self._failure: Failure | None = None
        self._hits: list[ScreeningHit] = []
        self._review: ReviewInput | None = None
        self._cancel: CancelInput | None = None
        self._retry_requested = False
        self._decisions: dict[str, OpsDecision] = {}
        self._message_id: str | None = None
        self._rail_event: RailEvent | None = None
        self._return_event: RailEvent | None = None
        self._file_status: str | None = None
        self._reference = ""
        self._local_steps = False

    # --- run ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, payment: PaymentInput) -> PaymentView:
        """Take the payment from `processing` to a terminal status."""
        # Decided once, in the first workflow task: a workflow that started before the patch
        # replays with ordinary activities throughout, even for steps it takes after a deploy.
        self._local_steps = is_patched(LOCAL_STEPS)
        kyc = await self._check_kyc()
        if not kyc.approved:
            return await self._finish(
                PaymentStatus.REJECTED,
                Failure(FailureCode.KYC_NOT_APPROVED, f"debtor KYC is {kyc.status}"),
            )

        screening = await self._run(
            steps.SCREEN_PARTIES,
            ScreeningInput(
                payment.payment_id,
                payment.creditor.name,
                payment.creditor.country,
                debtor_name=kyc.debtor_name,
                debtor_country=kyc.debtor_country,
                creditor_iban=payment.creditor.iban or "",
                remittance_info=payment.remittance_info or "",
            ),
        )
        if not is_patched(LIMITS_AND_BLOCKING):
            return await run_review_before_hold(self, kyc, screening)

        self._hits = list(screening.hits)
        limits = await self._run(
            steps.CHECK_PAYMENT_LIMITS,
            LimitsInput(
                payment.tenant_id,
                payment.customer_id,
                payment.payment_id,
                payment.amount,
                payment.currency,
            ),
            local=self._local_checks,
        )
        if self._cancel is not None:
            return await self._finish_canceled(held=False)
        if not await self._hold():
            return await self._finish_insufficient_funds()
        if self._hits or limits.exceeded:
            outcome = await self._await_review(limits.exceeded)
            if outcome is not None:
                return outcome
        if self._cancel is not None:
            return await self._finish_canceled(held=True)
        return await self._send(kyc)

    async def _hold(self) -> bool:
        """Reserve the amount; False when the available balance is too low."""
        hold = await self._run(steps.HOLD_FUNDS, self._ledger_input())
        return hold.succeeded

    async def _finish_insufficient_funds(self) -> PaymentView:
        return await self._finish(
            PaymentStatus.FAILED,
            Failure(FailureCode.INSUFFICIENT_FUNDS, "available balance is below the amount"),
        )

    async def _send(self, kyc: KycCheckResult) -> PaymentView:
        """Submit the held payment, then post or void on the rail's answer."""
        ledger = self._ledger_input()
        submitted = await self._submit(kyc.debtor_name)
        if not submitted:
            return await self._finish_canceled(held=True)
        await self._transition(PaymentStatus.SUBMITTED)

        event = await self._await_rail_outcome()
        if event.status == RailStatus.SETTLED or self._return_event is not None:
            await self._run(steps.POST_HOLD, ledger)
            payment = self._payment
            if payment.rail == "ach":
                return await self._settled_then_maybe_returned(payment.return_window_seconds)
            if payment.sepa_return_window_seconds > 0 and is_patched(SEPA_RETURNS):
                return await self._settled_then_maybe_returned(payment.sepa_return_window_seconds)
            return await self._finish(PaymentStatus.SETTLED)
        await self._run(steps.VOID_HOLD, ledger)
        return await self._finish(
            PaymentStatus.FAILED,
            Failure(
                FailureCode.RAIL_REJECTED,
                f"the rail rejected the payment ({event.reason_code or 'no reason given'})",
                reason_code=event.reason_code,
            ),
        )

    async def _settled_then_maybe_returned(self, window_seconds: float) -> PaymentView:
        """Settled, but the creditor's bank may still send the money back for a while (an ACH
        return, a SEPA pacs.004); a return credits the debtor and ends the payment `returned`."""
        payment = self._payment
        await self._transition(PaymentStatus.SETTLED)
        try:
            await workflow.wait_condition(
                lambda: self._return_event is not None,
                timeout=timedelta(seconds=window_seconds),
            )
        except TimeoutError:
            # a return whose callback never arrived is still at the bank: ask once
            assert self._message_id is not None
            polled = await self._run(
                steps.POLL_RAIL_STATUS,
                PollInput(payment.rail, self._message_id, payment.payment_id, self._reference),
            )
            if polled.event is not None and polled.event.status == RailStatus.RETURNED:
                self._return_event = polled.event
        if self._return_event is None:
            return self.status()
        code = self._return_event.reason_code
        await self._run(steps.REVERSE_PAYMENT, self._ledger_input())
        return await self._finish(
            PaymentStatus.RETURNED,
            Failure(
                FailureCode.RAIL_RETURNED,
                f"the receiving bank returned the payment ({code or 'no reason given'})",
                reason_code=code,
            ),
        )

    async def _await_review(self, limit_reasons: list[str]) -> PaymentView | None:
        """Wait for a four-eyes review of the held payment; None when approved.

        A review is never decided by time: past the escalation time it is flagged (search
        attribute ReviewEscalated, audit record) and keeps waiting for a person.
        """
        payment = self._payment
        await self._transition(PaymentStatus.IN_REVIEW, reasons=limit_reasons)

        def decided() -> bool:
            return self._review is not None or self._cancel is not None

        try:
            await workflow.wait_condition(
                decided, timeout=timedelta(seconds=payment.review_escalation_seconds)
            )
        except TimeoutError:
            await self._run(
                steps.RECORD_REVIEW_ESCALATION,
                EscalationInput(
                    payment.payment_id,
                    payment.review_escalation_seconds,
                    [hit.matched_name for hit in self._hits] + limit_reasons,
                ),
            )
            workflow.upsert_search_attributes([sa.REVIEW_ESCALATED.value_set(True)])
            await workflow.wait_condition(decided)
        if self._review is None:
            return await self._finish_canceled(held=True)
        ledger = self._ledger_input()
        if self._review.decision == ReviewDecision.REJECT:
            if self._hits:
                await self._run(steps.BLOCK_FUNDS, ledger)
                return await self._finish(
                    PaymentStatus.REJECTED,
                    Failure(
                        FailureCode.SANCTIONS_REJECTED,
                        f"screening hit confirmed by {self._review.reviewer}; funds blocked",
                    ),
                )
            await self._run(steps.VOID_HOLD, ledger)
            return await self._finish(
                PaymentStatus.REJECTED,
                Failure(
                    FailureCode.LIMIT_EXCEEDED,
                    f"over the velocity limit, rejected by {self._review.reviewer}",
                ),
            )
        # a review can take days, and KYC can lapse meanwhile
        kyc = await self._check_kyc()
        if not kyc.approved:
            await self._run(steps.VOID_HOLD, ledger)
            return await self._finish(
                PaymentStatus.REJECTED,
                Failure(FailureCode.KYC_NOT_APPROVED, f"debtor KYC is {kyc.status}"),
            )
        await self._transition(PaymentStatus.PROCESSING)
        return None

    async def _submit(self, debtor_name: str) -> bool:
        """Submit to the rail; after the retry budget, wait for ops. False if canceled."""
        payment = self._payment
        request = SubmitInput(
            payment.payment_id,
            payment.amount,
            payment.currency,
            payment.rail,
            debtor_name,
            payment.creditor,
            payment.remittance_info,
            created_at=workflow.info().start_time.isoformat(),
        )
        budget = RetryPolicy(
            initial_interval=timedelta(seconds=1),
            maximum_interval=timedelta(seconds=30),
            maximum_attempts=max(1, payment.submit_max_attempts),
            non_retryable_error_types=["message_refused"],
        )
        while True:
            try:
                result = await self._run(steps.SUBMIT_TO_RAIL, request, retry=budget)
                self._message_id = result.message_id
                self._reference = result.reference
                if payment.rail != "ach" or await self._ach_file_reached_bank():
                    return True
                # the window's file never got to the bank: the next try joins a later file
                request.not_in_file = result.message_id
                self._message_id = None
                self._file_status = None
            except ActivityError as err:
                workflow.logger.warning("rail submission failed: %s", err.cause)
            # reset before announcing action_required: a retry sent as soon as ops see it
            # must not be forgotten
            self._retry_requested = False
            await self._transition(PaymentStatus.ACTION_REQUIRED)
            await workflow.wait_condition(lambda: self._retry_requested or self._cancel is not None)
            if self._cancel is not None:
                return False
            await self._transition(PaymentStatus.PROCESSING)

    async def _ach_file_reached_bank(self) -> bool:
        """Wait for the batch workflow's word on the window's file (ACCP, RJCT or NOTSENT)."""
        await workflow.wait_condition(
            lambda: (
                self._file_status is not None
                or self._rail_event is not None
                or self._return_event is not None
            )
        )
        return self._file_status != RailStatus.NOT_SENT

    async def _await_rail_outcome(self) -> RailEvent:
        payment = self._payment
        assert self._message_id is not None
        # an ACH return implies settlement, even if it overtook the settlement notice
        while self._rail_event is None and self._return_event is None:
            try:
                await workflow.wait_condition(
                    lambda: self._rail_event is not None or self._return_event is not None,
                    timeout=timedelta(seconds=payment.rail_poll_interval_seconds),
                )
            except TimeoutError:
                polled = await self._run(
                    steps.POLL_RAIL_STATUS,
                    PollInput(payment.rail, self._message_id, payment.payment_id, self._reference),
                )
                if polled.event is not None:
                    self._adopt_rail_event(polled.event)
        return self._rail_event or RailEvent(self._message_id, RailStatus.SETTLED)

    async def _check_kyc(self) -> KycCheckResult:
        """The debtor's KYC status and the names screening needs (read-only)."""
        payment = self._payment
        return await self._run(
            steps.CHECK_DEBTOR_KYC,
            KycCheckInput(payment.tenant_id, payment.customer_id),
            local=self._local_checks,
        )

    @property
    def _local_checks(self) -> bool:
        # read-only checks run locally only where this worker also runs compliance work;
        # with one worker per role, they stay on the compliance queue
        return not self._payment.split_activity_queues

    def _ledger_input(self) -> LedgerInput:
        """The payment's money movement, the same for hold, post and void."""
        payment = self._payment
        return LedgerInput(
            payment.payment_id, payment.account_id, payment.amount, payment.currency, payment.rail
        )

    async def _finish_canceled(self, *, held: bool) -> PaymentView:
        if held:
            await self._run(steps.VOID_HOLD, self._ledger_input())
        reason = self._cancel.reason if self._cancel else ""
        return await self._finish(
            PaymentStatus.CANCELED, Failure(FailureCode.CANCELED, reason or "canceled by request")
        )

    async def _finish(self, status: PaymentStatus, failure: Failure | None = None) -> PaymentView:
        self._failure = failure
        await self._transition(status)
        return self.status()

    # --- plumbing ------------------------------------------------------------------------

    async def _run(
        self,
        step: Step[InputT, ResultT],
        arg: InputT,
        *,
        retry: RetryPolicy | None = None,
        local: bool = False,
    ) -> ResultT:
        """Run one step: `local` ones in this worker when LOCAL_STEPS is in force, the others
        on their role's queue, or on the payment's own queue when queues are not split."""
        if local and self._local_steps:
            return await step.run(arg, retry=retry, local=True)
        own_queue = None if self._payment.split_activity_queues else workflow.info().task_queue
        return await step.run(arg, task_queue=own_queue, retry=retry)

    async def _transition(self, status: PaymentStatus, *, reasons: list[str] | None = None) -> None:
        """Adopt a status change, persist it for the API, then publish the search attribute.

        The workflow adopts the status before the database shows it, so anything a client
        reads from the API (e.g. `in_review`) the workflow already accepts (e.g. a review).
        """
        self._seq += 1
        change = StatusChange(self._seq, status.value, workflow.now().isoformat())
        # Patched: workflows started before this change adopted the status only after
        # persisting it (and so completed a review update later); they replay that way.
        adopt_first = is_patched(ADOPT_STATUS_BEFORE_PERSISTING)
        if adopt_first:
            self._history.append(change)
            self._status = status
        await self._run(
            steps.RECORD_PAYMENT_STATUS,
            RecordStatusInput(
                self._payment.payment_id,
                change.seq,
                change.status,
                change.at,
                failure=self._failure,
                screening_hits=self._hits if status == PaymentStatus.IN_REVIEW else None,
                reasons=reasons or None,
                decision=self._decision_causing(status),
            ),
            local=True,
        )
        if not adopt_first:
            self._history.append(change)
            self._status = status
        workflow.upsert_search_attributes([sa.PAYMENT_STATUS.value_set(status.value)])

    def _decision_causing(self, status: PaymentStatus) -> OpsDecision | None:
        """The pending decision this transition is the effect of (taken: audited once)."""
        for kind, causes in DECISION_CAUSES.items():
            if kind in self._decisions and status in causes:
                return self._decisions.pop(kind)
        return None

    # --- signals, updates, queries ------------------------------------------------------

    @workflow.query
    def status(self) -> PaymentView:
        """Current status, failure, screening hits and history."""
        return PaymentView(
            self._payment.payment_id,
            self._status.value,
            self._failure,
            list(self._hits),
            list(self._history),
        )

    @workflow.update
    async def review(self, decision: ReviewInput) -> ReviewResult:
        """Approve (false positive) or reject a payment held in review (four-eyes)."""
        self._review = decision
        self._decisions["review"] = OpsDecision(
            decision.reviewer, f"payment.review.{decision.decision}", {"note": decision.note}
        )
        await workflow.wait_condition(lambda: self._status != PaymentStatus.IN_REVIEW)
        return ReviewResult(self._status.value)

    @review.validator
    def _validate_review(self, decision: ReviewInput) -> None:
        if self._status != PaymentStatus.IN_REVIEW or self._review is not None:
            raise ApplicationError(
                f"payment is {self._status.value}, not in_review", type="invalid_state"
            )
        if decision.decision not in set(ReviewDecision):
            raise ApplicationError("decision must be approve or reject", type="invalid_decision")
        if decision.reviewer == self._payment.initiated_by:
            raise ApplicationError(
                "the initiator of a payment cannot review it", type="four_eyes_violation"
            )

    @workflow.signal
    def rail_event(self, event: RailEvent) -> None:
        """Status from the rail's callback; duplicates, stale and out-of-order events are
        harmless (the first final status wins; ACCP carries no decision)."""
        if self._message_id is not None and event.message_id != self._message_id:
            return
        self._adopt_rail_event(event)

    def _adopt_rail_event(self, event: RailEvent) -> None:
        if event.status in (RailStatus.ACCEPTED, RailStatus.NOT_SENT):
            self._file_status = self._file_status or event.status
        elif event.status == RailStatus.RETURNED:
            self._return_event = self._return_event or event
        elif event.status in FINAL_RAIL_STATUSES and self._rail_event is None:
            self._rail_event = event

    @workflow.signal
    def retry(self, request: RetryInput | None = None) -> None:
        """Ops: try the rail again after `action_required` (the input names who asked)."""
        self._retry_requested = True
        if self._status == PaymentStatus.ACTION_REQUIRED:
            request = request or RetryInput()
            self._decisions["retry"] = OpsDecision(
                request.requested_by, "payment.retry", {"note": request.note}
            )

    @workflow.signal
    def cancel(self, request: CancelInput) -> None:
        """Cancel before submission; ignored once the rail has the payment."""
        if self._status in CANCELABLE_STATUSES and self._message_id is None:
            self._cancel = request
            self._decisions["cancel"] = OpsDecision(
                request.requested_by, "payment.cancel", {"reason": request.reason}
            )
