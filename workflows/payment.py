"""The payment workflow (DESIGN §3): one workflow per payment, id = payment id.

KYC of the debtor → sanctions screening → velocity limits → ledger hold → (review) → rail
submit → wait for the rail's status (signal from the callback, timer-driven poll as
fallback) → post or void → (wait out the rail's return window; a return credits the debtor,
an accepted recall, told by the Recall workflow's `recalled` signal and confirmed in the
database before it is believed, ends it `returned`).
Every failure path leaves the hold released, except a confirmed sanctions hit, whose money
moves to the blocked-funds account; each ledger step carries a transfer id derived from the
payment id, so a retried activity never moves money twice.

When the bank's answer is lost, nothing is assumed: the workflow asks the bank what it has
(pacs.028, an ACH file's status) before it resends, cancels or fails, and waits in
`action_required` with the hold in place while the bank cannot say (`action.reason`).
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

# `import workflows.x as x`, not `from workflows import x`: the sandbox imports this module's
# package afresh for every workflow run, and a submodule named through that package is then
# imported afresh too (Python's `_handle_fromlist` bypasses the sandbox's pass-through), so
# the step catalogue's module body ran once per payment (~7% of the worker's CPU)
with workflow.unsafe.imports_passed_through():
    import workflows.search_attributes as sa
    import workflows.steps as steps
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
        OutcomeInput,
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
    from workflows.models.recall import RECALL_SEQ, RecallClaim, RecallOutcome, recall_failure
    from workflows.models.vocabulary import (
        CANCELABLE_STATUSES,
        FINAL_RAIL_STATUSES,
        ActionReason,
        BankRecord,
        FailureCode,
        PaymentStatus,
        RailStatus,
        ReviewDecision,
    )
    from workflows.patches import (
        ADOPT_STATUS_BEFORE_PERSISTING,
        ASK_BANK_BEFORE_RESEND,
        LIMITS_AND_BLOCKING,
        LOCAL_STEPS,
        RECALL_CONFIRMED,
        RECALL_ENDS_PAYMENT,
        REVIEW_TOKENS,
        SCHEDULED_EXECUTION,
        SEPA_RETURNS,
        is_patched,
    )
    from workflows.payment_legacy import run_review_before_hold, submit_without_asking
    from workflows.review_gate import pass_review_gate
    from workflows.steps import Step

# activities/rails.py and api/routers/rails.py import it from here
RETURNED = RailStatus.RETURNED
InputT = TypeVar("InputT")
ResultT = TypeVar("ResultT")
# rail events that came before the payment knew its message id, kept to match it later; a
# bound, since anyone who can signal could send any number
MAX_EARLY_RAIL_EVENTS = 20
# while the bank's answer is unknown the workflow asks again by itself, backing off to this
MAX_ASK_INTERVAL = timedelta(hours=1)
# The transitions a person's decision can cause: the decision is audited with the first of
# them (a decision that causes none, e.g. a cancel overtaken by a failure, changed nothing).
DECISION_CAUSES = {
    "review": (PaymentStatus.PROCESSING, PaymentStatus.REJECTED),
    "cancel": (PaymentStatus.CANCELED,),
    # back to processing (sent again), or on as submitted (the bank had it; ledger posted)
    "retry": (PaymentStatus.PROCESSING, PaymentStatus.SUBMITTED),
}


@workflow.defn(name="Payment")
class PaymentWorkflow:
    """Orchestrates one payment; see the module docstring."""

    @workflow.init
    def __init__(self, payment: PaymentInput) -> None:
        self._payment = payment
        # a payment with `execute_at` was recorded `scheduled` by the API (status seq 0)
        self._status = PaymentStatus.SCHEDULED if payment.execute_at else PaymentStatus.PROCESSING
        self._seq = 0
        self._history: list[StatusChange] = []
        self._failure: Failure | None = None
        self._hits: list[ScreeningHit] = []
        self._review: ReviewInput | None = None
        self._review_checking = False
        self._cancel: CancelInput | None = None
        self._retry_requested = False
        self._decisions: dict[str, OpsDecision] = {}
        self._message_id: str | None = None
        self._rail_event: RailEvent | None = None
        self._return_event: RailEvent | None = None
        self._file_status: str | None = None
        self._reference = ""
        self._local_steps = False
        self._asks_bank_marker: bool | None = None
        self._action_reason: ActionReason | None = None
        # a retry or an accepted cancel that the workflow has not acted on yet
        self._ops_asked = False
        self._early_events: list[RailEvent] = []
        self._parked_return: RailEvent | None = None
        self._submission: SubmitInput | None = None
        # an accepted recall of this payment, told by the Recall workflow (`recalled`)
        self._recalled: RecallOutcome | None = None
        self._recall_claims = 0
        self._last_claim: RecallOutcome | None = None

    # --- run ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, payment: PaymentInput) -> PaymentView:
        """Take the payment from `processing` to a terminal status."""
        # Decided once, in the first workflow task: a workflow that started before the patch
        # replays with ordinary activities throughout, even for steps it takes after a deploy.
        self._local_steps = is_patched(LOCAL_STEPS)
        # asked of every payment, so that histories from before it replay its old branch
        scheduled = is_patched(SCHEDULED_EXECUTION) and payment.execute_at is not None
        if scheduled and not await self._await_execution():
            return await self._finish_canceled(held=False)
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
        if self._cancel is not None and not self._review_decides:
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

    async def _await_execution(self) -> bool:
        """Wait `scheduled` until `execute_at` (a durable timer; nothing is checked or held
        meanwhile), then move to `processing`; False when canceled first."""
        assert self._payment.execute_at is not None
        wait = datetime.fromisoformat(self._payment.execute_at) - workflow.now()
        if wait > timedelta(0):
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._cancel is not None, timeout=wait)
        if self._cancel is not None:
            return False
        await self._transition(PaymentStatus.PROCESSING)
        return True

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
        if self._asks_bank:
            submitted = await self._submit(kyc.debtor_name)
        else:
            submitted = await submit_without_asking(self, kyc.debtor_name)
        if not submitted:
            return await self._finish_canceled(held=True)
        await self._transition(PaymentStatus.SUBMITTED)

        event = await self._await_rail_outcome()
        if event.status == RailStatus.SETTLED or self._return_event is not None:
            await self._post_hold(ledger)
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
        # Patched: payments settled before this change ignore an accepted recall (the
        # database says `returned`, they ended `settled`); they replay that way.
        ends_on_recall = is_patched(RECALL_ENDS_PAYMENT)
        deadline = workflow.now() + timedelta(seconds=window_seconds)
        while True:
            # the whole window at first (the one timer older histories have); after a refused
            # recall claim, what is left of it
            remaining = deadline - workflow.now()
            timed_out = remaining <= timedelta(0)
            if not timed_out:
                try:
                    await workflow.wait_condition(
                        lambda: (
                            self._return_event is not None
                            or (ends_on_recall and self._recalled is not None)
                        ),
                        timeout=remaining,
                    )
                except TimeoutError:
                    timed_out = True
            if timed_out:
                # a return whose callback never arrived is still at the bank: ask once
                assert self._message_id is not None
                polled = await self._run(
                    steps.POLL_RAIL_STATUS,
                    PollInput(payment.rail, self._message_id, payment.payment_id, self._reference),
                )
                if polled.event is not None and polled.event.status == RailStatus.RETURNED:
                    self._return_event = polled.event
                    self._parked_return = None
            if self._return_event is None and ends_on_recall and self._recalled is not None:
                # Patched: a claim is adopted only once the database confirms it; histories
                # that heard `recalled` before this change adopted it as it came
                if not is_patched(RECALL_CONFIRMED):
                    return self._adopt_recall(self._recalled)
                confirmed = await self._confirm_recall()
                if confirmed is not None:
                    return self._adopt_recall(confirmed)
                if not timed_out:
                    continue  # not a recall: wait out the rest of the window, as before
            break
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

    async def _confirm_recall(self) -> RecallOutcome | None:
        """The accepted recall the database holds for this payment (its reason and time, not
        the signal's), or None: the claim is refused (logged; the activity audits it) and
        forgotten, unless another claim came in meanwhile, which is checked next."""
        claim = self._recalled
        assert claim is not None
        claims_before = self._recall_claims
        payment = self._payment
        answer = await steps.CONFIRM_RECALL.run(
            RecallClaim(payment.payment_id, payment.tenant_id, claim), local=True
        )
        if answer.confirmed:
            return replace(
                claim,
                reason=answer.reason or claim.reason,
                answered_at=answer.answered_at or claim.answered_at,
            )
        workflow.logger.warning(
            "recalled signal refused (%s): %s claims %s", answer.refusal, claim.payment_id, claim
        )
        self._recalled = self._last_claim if self._recall_claims > claims_before else None
        return None

    def _adopt_recall(self, outcome: RecallOutcome) -> PaymentView:
        """End `returned` as the accepted recall left the payment: its unit of work recorded
        the status, the event and the audit record, and its transfer credited the debtor (the
        same id as a return's, so a return arriving as well books nothing twice). Nothing is
        recorded again; the search attribute follows."""
        self._failure = recall_failure(outcome.reason)
        self._history.append(
            StatusChange(RECALL_SEQ, PaymentStatus.RETURNED.value, outcome.answered_at)
        )
        self._status = PaymentStatus.RETURNED
        workflow.upsert_search_attributes([sa.PAYMENT_STATUS.value_set(self._status.value)])
        return self.status()

    async def _await_review(self, limit_reasons: list[str]) -> PaymentView | None:
        """Wait for a four-eyes review of the held payment; None when approved.

        A review is never decided by time: past the escalation time it is flagged (search
        attribute ReviewEscalated, audit record) and keeps waiting for a person.
        """
        payment = self._payment
        await self._transition(PaymentStatus.IN_REVIEW, reasons=limit_reasons)

        def decided() -> bool:
            cancels = self._cancel is not None and not self._review_decides
            return self._review is not None or cancels

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

    def _submit_request(self, debtor_name: str) -> SubmitInput:
        payment = self._payment
        return SubmitInput(
            payment.payment_id,
            payment.amount,
            payment.currency,
            payment.rail,
            debtor_name,
            payment.creditor,
            payment.remittance_info,
            created_at=workflow.info().start_time.isoformat(),
        )

    def _submit_budget(self) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=timedelta(seconds=1),
            maximum_interval=timedelta(seconds=30),
            maximum_attempts=max(1, self._payment.submit_max_attempts),
            non_retryable_error_types=["message_refused"],
        )

    async def _submit(self, debtor_name: str) -> bool:
        """Hand the payment to the bank exactly once; False if it was canceled instead.

        A submission whose answer was lost is never taken as not sent: the bank is asked.
        While it cannot be asked, the payment waits in `action_required` (outcome_unknown)
        with the hold in place, asking again by itself and whenever ops retry or cancel.
        Only a bank that confirms it has no record lets a resend or a cancel through.
        """
        self._submission = self._submit_request(debtor_name)
        record = await self._submit_once()
        asked = 0
        while record != BankRecord.RECEIVED:
            if record == BankRecord.NO_RECORD:
                # an ops retry that asked the bank sends again at once; an answer the
                # workflow sought by itself waits for ops
                if self._cancel is None and not self._retry_requested:
                    await self._await_ops(ActionReason.RAIL_UNREACHABLE)
                if self._cancel is not None:
                    return False
                self._retry_requested = False
                await self._transition(PaymentStatus.PROCESSING)
                record = await self._submit_once()
                continue
            await self._await_ops(ActionReason.OUTCOME_UNKNOWN, ask_after=self._ask_interval(asked))
            asked += 1
            record = await self._ask_bank()
        return True

    async def _submit_once(self) -> BankRecord:
        """One submission with its retry budget: what the bank has of it afterwards."""
        assert self._submission is not None
        try:
            result = await self._run(
                steps.SUBMIT_TO_RAIL, self._submission, retry=self._submit_budget()
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == "message_refused":
                return BankRecord.NO_RECORD  # the bank said no: nothing of it can be paid
            workflow.logger.warning("rail submission unanswered, asking the bank: %s", cause)
            return await self._ask_bank()
        self._submitted_as(result.message_id, result.reference)
        if self._payment.rail != "ach":
            return BankRecord.RECEIVED
        return await self._ach_file_fate()

    async def _ach_file_fate(self) -> BankRecord:
        """Wait for the batch workflow's word on the window's file: at the bank (ACCP, or a
        refusal, RJCT, which the rail outcome then reports), confirmed never received
        (NOTSENT) or unknown (the bank could not be asked)."""
        await workflow.wait_condition(
            lambda: (
                self._file_status is not None
                or self._rail_event is not None
                or self._return_event is not None
                or self._parked_return is not None
            )
        )
        if self._file_status == RailStatus.NOT_SENT:
            self._resubmit_outside(self._message_id)
            return BankRecord.NO_RECORD
        if self._file_status == RailStatus.UNKNOWN:
            self._file_status = None
            return BankRecord.UNKNOWN
        return BankRecord.RECEIVED

    async def _ask_bank(self) -> BankRecord:
        """Ask the bank what it has of this payment (SEPA pacs.028, ACH the file's status);
        UNKNOWN when it cannot be asked either."""
        payment = self._payment
        try:
            answer = await self._run(
                steps.ASK_RAIL_OUTCOME, OutcomeInput(payment.rail, payment.payment_id)
            )
        except ActivityError as err:
            workflow.logger.warning("the bank could not be asked: %s", err.cause)
            return BankRecord.UNKNOWN
        if answer.record != BankRecord.RECEIVED:
            self._resubmit_outside(answer.message_id)
            return BankRecord.NO_RECORD
        self._submitted_as(answer.message_id, answer.reference)
        if answer.event is not None:
            self._receive_rail_event(answer.event, from_bank_record=True)
        return BankRecord.RECEIVED

    def _submitted_as(self, message_id: str, reference: str) -> None:
        """The bank has (or is about to get) the payment as `message_id`; events that came
        before the workflow knew it are matched now."""
        self._message_id = message_id
        self._reference = reference
        early, self._early_events = self._early_events, []
        for event in early:
            self._receive_rail_event(event)

    def _resubmit_outside(self, file_id: str | None) -> None:
        """ACH: the next try joins a later file, with a new trace number."""
        if self._submission is not None and self._payment.rail == "ach" and file_id:
            self._submission.not_in_file = file_id
        self._message_id = None
        self._reference = ""
        self._file_status = None

    def _ask_interval(self, asked: int) -> timedelta:
        seconds = max(1.0, self._payment.rail_poll_interval_seconds) * 2 ** min(asked, 12)
        return min(timedelta(seconds=seconds), MAX_ASK_INTERVAL)

    async def _await_ops(self, reason: ActionReason, *, ask_after: timedelta | None = None) -> None:
        """Wait in `action_required` (for `reason`) until ops retry or cancel, or until it
        is time to ask the bank again (`ask_after`)."""
        if self._status != PaymentStatus.ACTION_REQUIRED or self._action_reason != reason:
            # reset before announcing: a request sent as soon as ops see it is not forgotten
            self._ops_asked = False
            self._retry_requested = False
            await self._transition(PaymentStatus.ACTION_REQUIRED, action_reason=reason)
        try:
            await workflow.wait_condition(lambda: self._ops_asked, timeout=ask_after)
        except TimeoutError:
            return
        self._ops_asked = False

    async def _post_hold(self, ledger: LedgerInput) -> None:
        """Post the held amount once the bank paid. A ledger that refuses (its rows lost in a
        failover, say) never fails the payment: it waits for ops as ledger_out_of_sync."""
        if not self._asks_bank:
            await self._run(steps.POST_HOLD, ledger)
            return
        while True:
            try:
                await self._run(steps.POST_HOLD, ledger)
                return
            except ActivityError as err:
                workflow.logger.error("the bank paid but the ledger refused to post: %s", err.cause)
            await self._await_ops(ActionReason.LEDGER_OUT_OF_SYNC)
            await self._transition(PaymentStatus.SUBMITTED)

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
                    if self._asks_bank:
                        self._receive_rail_event(polled.event, from_bank_record=True)
                    else:
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

    async def _transition(
        self,
        status: PaymentStatus,
        *,
        reasons: list[str] | None = None,
        action_reason: ActionReason | None = None,
    ) -> None:
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
                action_reason=action_reason,
            ),
            local=True,
        )
        if not adopt_first:
            self._history.append(change)
            self._status = status
        updates = [sa.PAYMENT_STATUS.value_set(status.value)]
        if action_reason is not None:
            updates.append(sa.ACTION_REASON.value_set(action_reason.value))
        elif self._action_reason is not None:
            updates.append(sa.ACTION_REASON.value_unset())
        self._action_reason = action_reason
        workflow.upsert_search_attributes(updates)

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
            self._action_reason.value if self._action_reason else None,
        )

    @workflow.update
    async def review(self, decision: ReviewInput) -> ReviewResult:
        """Approve (false positive) or reject a payment held in review (four-eyes)."""
        if is_patched(REVIEW_TOKENS):
            # a second review waits in the validator's refusal while this one is checked
            self._review_checking = True
            try:
                await pass_review_gate(
                    decision,
                    tenant_id=self._payment.tenant_id,
                    initiator=self._payment.initiated_by,
                )
            finally:
                self._review_checking = False
        self._review = decision
        self._decisions["review"] = OpsDecision(
            decision.reviewer, f"payment.review.{decision.decision}", {"note": decision.note}
        )
        await workflow.wait_condition(lambda: self._status != PaymentStatus.IN_REVIEW)
        return ReviewResult(self._status.value)

    @review.validator
    def _validate_review(self, decision: ReviewInput) -> None:
        if self._review_checking:
            raise ApplicationError("another review is being checked", type="invalid_state")
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

    @property
    def _asks_bank(self) -> bool:
        """ASK_BANK_BEFORE_RESEND, decided the first time it is asked (a signal may ask
        before `run` does) and kept for the payment's life."""
        if self._asks_bank_marker is None:
            self._asks_bank_marker = is_patched(ASK_BANK_BEFORE_RESEND)
        return self._asks_bank_marker

    @property
    def _review_decides(self) -> bool:
        """A screening hit waits for its review, which alone decides: a cancel would release
        money the sanctions rules say must be blocked (ASK_BANK_BEFORE_RESEND)."""
        return self._asks_bank and bool(self._hits) and self._review is None

    @workflow.signal
    def rail_event(self, event: RailEvent) -> None:
        """Status from the rail's callback; duplicates, stale and out-of-order events are
        harmless (the first final status wins; ACCP carries no decision). An event that does
        not name what this payment submitted is ignored."""
        if self._asks_bank:
            self._receive_rail_event(event)
            return
        if self._message_id is not None and event.message_id != self._message_id:
            return
        self._adopt_rail_event(event)

    def _receive_rail_event(self, event: RailEvent, *, from_bank_record: bool = False) -> None:
        """Adopt an event that names this payment's submission (message or file, and entry);
        keep one that came before the workflow knew its submission; ignore the others."""
        if self._message_id is None:
            if len(self._early_events) < MAX_EARLY_RAIL_EVENTS:
                self._early_events.append(event)
            else:
                self._ignore(event, "too_many_early_events")
            return
        if event.message_id != self._message_id:
            self._ignore(event, "other_message")
            return
        if event.reference and self._reference and event.reference != self._reference:
            self._ignore(event, "other_entry")
            return
        if event.status == RailStatus.RETURNED and from_bank_record:
            # the bank's own record of a returned payment: it settled first
            self._adopt_rail_event(RailEvent(event.message_id, RailStatus.SETTLED))
        self._adopt_rail_event(event)

    def _ignore(self, event: RailEvent, why: str) -> None:
        workflow.logger.warning(
            "rail event ignored (%s): %s %s for %s",
            why,
            event.status,
            event.message_id,
            self._message_id,
        )
        workflow.metric_meter().create_counter(
            "payments_rail_events_ignored", "rail events that named no submission of theirs"
        ).add(1, {"reason": why})

    def _adopt_rail_event(self, event: RailEvent) -> None:
        if event.status in (RailStatus.ACCEPTED, RailStatus.NOT_SENT, RailStatus.UNKNOWN):
            self._file_status = self._file_status or event.status
        elif event.status == RailStatus.RETURNED:
            if self._asks_bank and not self._settled_at_bank():
                # a return is adopted only after settlement: kept until the bank settles
                self._parked_return = self._parked_return or event
                return
            self._return_event = self._return_event or event
        elif event.status in FINAL_RAIL_STATUSES and self._rail_event is None:
            self._rail_event = event
            if event.status == RailStatus.SETTLED and self._parked_return is not None:
                self._return_event, self._parked_return = self._parked_return, None

    def _settled_at_bank(self) -> bool:
        return self._rail_event is not None and self._rail_event.status == RailStatus.SETTLED

    @workflow.signal
    def recalled(self, outcome: RecallOutcome) -> None:
        """The Recall workflow: the sender's recall was accepted and the funds are booked
        back. Ends a payment still waiting out its return window `returned`."""
        if outcome.status == "accepted" and outcome.payment_id == self._payment.payment_id:
            self._recalled = self._recalled or outcome
            # a claim until the database confirms it (RECALL_CONFIRMED): counted, so that one
            # arriving while another is checked is checked too
            self._recall_claims += 1
            self._last_claim = outcome

    @workflow.signal
    def retry(self, request: RetryInput | None = None) -> None:
        """Ops: after `action_required`, ask the bank again and send again only if it has no
        record (the input names who asked). Outside `action_required` it means nothing."""
        if self._asks_bank and self._status != PaymentStatus.ACTION_REQUIRED:
            return
        self._retry_requested = True
        if self._status == PaymentStatus.ACTION_REQUIRED:
            self._ops_asked = True
            request = request or RetryInput()
            self._decisions["retry"] = OpsDecision(
                request.requested_by, "payment.retry", {"note": request.note}
            )

    @workflow.signal
    def cancel(self, request: CancelInput) -> None:
        """Cancel while no money can leave; see `_cancel_allowed`. Otherwise ignored."""
        if not self._cancel_allowed():
            return
        self._cancel = request
        self._ops_asked = self._asks_bank
        self._decisions["cancel"] = OpsDecision(
            request.requested_by, "payment.cancel", {"reason": request.reason}
        )

    def _cancel_allowed(self) -> bool:
        """Before submission; in `action_required` only until the bank is found to have the
        payment (the workflow asks it first); never during a sanctions review (the review
        decides) nor once the bank paid (ledger_out_of_sync)."""
        if not self._asks_bank:
            return self._status in CANCELABLE_STATUSES and self._message_id is None
        if self._review_decides or self._status not in CANCELABLE_STATUSES:
            return False
        if self._status == PaymentStatus.ACTION_REQUIRED:
            return self._action_reason != ActionReason.LEDGER_OUT_OF_SYNC
        return self._message_id is None
