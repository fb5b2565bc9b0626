"""The recall workflow: the sender of a settled payment asks for the money back (issue #18).

One per payment, id `recall-<payment id>` (`recall_workflow_id`), started by the API, so a
retried request starts it once. The payment workflow is not involved: its commands are
unchanged, and a payment whose return window closed has no workflow left to tell.

- SEPA: a camt.056 cancellation request (`send_recall`); the bank's camt.029 resolution comes
  back by callback as the `recall_answer` signal, within the rail's deadline (none by then:
  rejected, NOAS). Accepted, the funds follow as a pacs.004 (reason FOCR), the callback
  signals `rail_event` RTRN here (funds not there by `funds_deadline_seconds`: the recall is
  marked `funds_overdue_at` for ops, and the wait goes on); rejected, the payment stays
  settled.
- ACH: a reversal entry in a later window's file, under the workflow's id: the ACH batch
  workflow and the bank's callbacks signal `rail_event` here as they signal a payment (as
  for a prenote). A file refused or never sent, or a return of the reversal, rejects the
  recall; no return within `reversal_window_seconds` after the file was accepted, and the
  reversal stands.

Accepted: the debtor is credited back with the ledger transfer of a return
(`reverse_payment`, id `<payment id>:return`: exactly once, whichever of a return and a
recall books it), then the outcome is recorded (`record_recall_outcome`: payment `returned`
with the recall's reason, `recall.status`, events) in one unit of work, and the payment's
workflow, if still open, is signaled `recalled` so that it ends `returned` too: by an
activity (`tell_payment_recalled`), so that a transient failure is retried and only a
workflow closed or not found counts as done. The payment believes the signal only once the
database shows what this unit of work recorded (workflows/payment.py, `confirm_recall`).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from workflows.models.payment import LedgerInput, RailEvent
    from workflows.models.recall import (
        RecallAnswer,
        RecallFundsOverdue,
        RecallInput,
        RecallOutcome,
        RecallRef,
    )
    from workflows.models.vocabulary import RailStatus
    from workflows.patches import (
        RECALL_FUNDS_DEADLINE,
        RECALL_TELLS_PAYMENT,
        RECALL_TOLD_BY_ACTIVITY,
        is_patched,
    )
    from workflows.steps import (
        RECORD_RECALL_FUNDS_OVERDUE,
        RECORD_RECALL_OUTCOME,
        REVERSE_PAYMENT,
        SEND_RECALL,
        TELL_PAYMENT_RECALLED,
    )

ACCEPTED = "accepted"
REJECTED = "rejected"
# the pacs.004 return reason of the funds of an accepted recall (following cancellation request)
FOLLOWING_CANCELLATION = "FOCR"
# ExternalPaymentCancellationRejection1Code: no answer (by the rail's deadline)
NO_ANSWER = "NOAS"
# a file status that ends a reversal before the bank could take it
_NOT_DELIVERED = frozenset(
    {RailStatus.REJECTED, RailStatus.NOT_SENT, RailStatus.UNKNOWN, RailStatus.EMPTY}
)


def recall_workflow_id(payment_id: str) -> str:
    """The recall workflow's id: derived from the payment's, so a payment has one recall."""
    return f"recall-{payment_id}"


@workflow.defn(name="Recall")
class RecallWorkflow:
    """See the module docstring."""

    def __init__(self) -> None:
        self._answer: RecallAnswer | None = None
        self._events: list[RailEvent] = []

    @workflow.run
    async def run(self, request: RecallInput) -> RecallOutcome:
        """Send the recall, wait for the bank, book the funds back if they come."""
        await SEND_RECALL.run(RecallRef(request.payment_id))
        if request.rail == "sepa":
            accepted, code = await self._sepa(request)
        else:
            accepted, code = await self._ach(request)
        if accepted:
            await REVERSE_PAYMENT.run(
                LedgerInput(
                    request.payment_id,
                    request.account_id,
                    request.amount,
                    request.currency,
                    request.rail,  # type: ignore[arg-type]
                )
            )
        outcome = RecallOutcome(
            request.payment_id,
            ACCEPTED if accepted else REJECTED,
            request.reason,
            workflow.now().isoformat(),
            answer_reason=code,
        )
        await RECORD_RECALL_OUTCOME.run(outcome)
        if accepted and is_patched(RECALL_TELLS_PAYMENT):
            if is_patched(RECALL_TOLD_BY_ACTIVITY):
                # through the client, in an activity: a transient failure is retried, a
                # payment workflow closed or not found is done (PaymentTold.delivered False)
                await TELL_PAYMENT_RECALLED.run(outcome)
            else:
                await self._tell_payment(outcome)
        return outcome

    async def _tell_payment(self, outcome: RecallOutcome) -> None:
        """A payment workflow still waiting out its return window ends `returned` (its result
        and PaymentStatus search attribute agree with the database). One that closed cannot
        hear it: its attribute stays `settled`, and the API and this workflow say the rest.
        Histories without RECALL_TOLD_BY_ACTIVITY: any failure, a transient one too, dropped
        the signal."""
        payment = workflow.get_external_workflow_handle(outcome.payment_id)
        try:
            await payment.signal("recalled", outcome)
        except FailureError:
            workflow.logger.info("payment workflow closed; recall not signaled")

    async def _sepa(self, request: RecallInput) -> tuple[bool, str | None]:
        try:
            await workflow.wait_condition(
                lambda: self._answer is not None,
                timeout=timedelta(seconds=request.answer_deadline_seconds),
            )
        except TimeoutError:
            return False, NO_ANSWER
        assert self._answer is not None
        if not self._answer.accepted:
            return False, self._answer.reason_code or None
        # the bank accepted: the funds are on their way (pacs.004, FOCR)
        if is_patched(RECALL_FUNDS_DEADLINE):
            try:
                await workflow.wait_condition(
                    lambda: self._returned() is not None,
                    timeout=timedelta(seconds=request.funds_deadline_seconds),
                )
            except TimeoutError:
                # late, not lost: ops chase the bank, the funds are still booked when they come
                since = workflow.now().isoformat()
                await RECORD_RECALL_FUNDS_OVERDUE.run(RecallFundsOverdue(request.payment_id, since))
        await workflow.wait_condition(lambda: self._returned() is not None)
        return True, None

    async def _ach(self, request: RecallInput) -> tuple[bool, str | None]:
        await workflow.wait_condition(
            lambda: any(e.status != RailStatus.SETTLED for e in self._events)
        )
        first = next(e for e in self._events if e.status != RailStatus.SETTLED)
        if first.status in _NOT_DELIVERED or first.status == RailStatus.RETURNED:
            return False, first.reason_code or str(first.status)
        try:
            await workflow.wait_condition(
                lambda: self._returned() is not None,
                timeout=timedelta(seconds=request.reversal_window_seconds),
            )
        except TimeoutError:
            return True, None
        returned = self._returned()
        assert returned is not None
        return False, returned.reason_code or str(returned.status)

    def _returned(self) -> RailEvent | None:
        return next((e for e in self._events if e.status == RailStatus.RETURNED), None)

    @workflow.signal(name="recall_answer")
    def recall_answer(self, answer: RecallAnswer) -> None:
        """The bank's camt.029 (the first answer counts)."""
        self._answer = self._answer or answer

    @workflow.signal(name="rail_event")
    def rail_event(self, event: RailEvent) -> None:
        """What the rail said: the pacs.004 of an accepted SEPA recall; the reversal's file
        fate, settlement or return (ACH)."""
        self._events.append(event)
