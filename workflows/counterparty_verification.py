"""Verification of a saved counterparty before its first use; one per counterparty, whose id
is the counterparty id.

- SEPA: a Verification-of-Payee name check at the bank (`check_payee`): `verified`,
  `close_match` (with the name the bank holds) or `no_match`. A bank that cannot answer after
  the step's attempts is asked again `payee_check_retries` times, hours apart (doubling);
  never answered, the counterparty stays `pending` (payments to it go to review).
- ACH: a prenote (zero-amount entry, transaction code 23/33) in the next window's file
  (`send_prenote`). The ACH batch workflow and the bank's callbacks signal this workflow by
  the entry's id (the counterparty id) exactly as they signal a payment: a file refused or
  never sent fails the prenote; otherwise it is `verified` once `prenote_window_seconds` pass
  after the file was accepted without a return, and `failed` with the R-code if one arrives.

The outcome is recorded with its `counterparty.verified` event and audit record in one unit
of work (`record_counterparty_verification`).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.models.counterparty import (
        CounterpartyRef,
        PayeeCheckResult,
        VerificationOutcome,
        VerifyCounterpartyInput,
    )
    from workflows.models.payment import RailEvent
    from workflows.models.vocabulary import RailStatus
    from workflows.steps import CHECK_PAYEE, RECORD_VERIFICATION, SEND_PRENOTE

# a file status that ends a prenote before the bank could return it
_NOT_DELIVERED = frozenset(
    {RailStatus.REJECTED, RailStatus.NOT_SENT, RailStatus.UNKNOWN, RailStatus.EMPTY}
)


@workflow.defn(name="CounterpartyVerification")
class CounterpartyVerificationWorkflow:
    """See the module docstring."""

    def __init__(self) -> None:
        self._events: list[RailEvent] = []

    @workflow.run
    async def run(self, request: VerifyCounterpartyInput) -> VerificationOutcome:
        """Verify the counterparty and record the outcome."""
        if request.rail == "sepa":
            answer = await self._check_payee(request)
            if answer is None:
                return VerificationOutcome(request.counterparty_id, "pending", "vop")
            outcome = VerificationOutcome(
                request.counterparty_id, answer.status, "vop", matched_name=answer.matched_name
            )
        else:
            outcome = await self._prenote(request)
        await RECORD_VERIFICATION.run(outcome)
        return outcome

    async def _check_payee(self, request: VerifyCounterpartyInput) -> PayeeCheckResult | None:
        """The bank's answer, asking again later while it cannot give one (a bounded number
        of times, doubling the wait); None when it never could."""
        delay = request.payee_check_retry_seconds
        for retry in range(request.payee_check_retries + 1):
            try:
                return await CHECK_PAYEE.run(CounterpartyRef(request.counterparty_id))
            except ActivityError as err:
                workflow.logger.warning("payee check unavailable (%d): %s", retry, err.cause)
            if retry < request.payee_check_retries:
                await workflow.sleep(timedelta(seconds=delay))
                delay *= 2
        return None

    async def _prenote(self, request: VerifyCounterpartyInput) -> VerificationOutcome:
        await SEND_PRENOTE.run(CounterpartyRef(request.counterparty_id))
        await workflow.wait_condition(
            lambda: any(e.status != RailStatus.SETTLED for e in self._events)
        )
        first = next(e for e in self._events if e.status != RailStatus.SETTLED)
        if first.status in _NOT_DELIVERED:
            return self._failed(request, first)
        try:
            await workflow.wait_condition(
                lambda: self._returned() is not None,
                timeout=timedelta(seconds=request.prenote_window_seconds),
            )
        except TimeoutError:
            return VerificationOutcome(request.counterparty_id, "verified", "prenote")
        returned = self._returned()
        assert returned is not None
        return self._failed(request, returned)

    def _returned(self) -> RailEvent | None:
        return next((e for e in self._events if e.status == RailStatus.RETURNED), None)

    @staticmethod
    def _failed(request: VerifyCounterpartyInput, event: RailEvent) -> VerificationOutcome:
        return VerificationOutcome(
            request.counterparty_id,
            "failed",
            "prenote",
            reason=event.reason_code or str(event.status),
        )

    @workflow.signal(name="rail_event")
    def rail_event(self, event: RailEvent) -> None:
        """What the rail said of the prenote (its file's fate, settlement, a return)."""
        self._events.append(event)
