"""Paths of the payment workflow that only histories recorded before a patch still take.

Nothing new starts on them: `workflows/payment.py` reads as today's flow and calls in here
only where a patch (workflows/patches.py) says the history predates it. Each function names
the patch that retired it; it is deleted with that patch's old branch (docs/versioning.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.models.payment import (
        Failure,
        KycCheckInput,
        KycCheckResult,
        PaymentView,
        ScreeningResult,
    )
    from workflows.models.vocabulary import FailureCode, PaymentStatus, RailStatus, ReviewDecision
    from workflows.patches import RECHECK_KYC_AFTER_REVIEW, is_patched
    from workflows.steps import CHECK_DEBTOR_KYC, SUBMIT_TO_RAIL

if TYPE_CHECKING:
    from workflows.payment import PaymentWorkflow


async def run_review_before_hold(
    payment: PaymentWorkflow, kyc: KycCheckResult, screening: ScreeningResult
) -> PaymentView:
    """The order before LIMITS_AND_BLOCKING: no limits, review first, hold after."""
    if screening.hits:
        payment._hits = list(screening.hits)
        rejected = await _review_hits_unheld(payment)
        if rejected is not None:
            return rejected
    if payment._cancel is not None:
        return await payment._finish_canceled(held=False)
    if not await payment._hold():
        return await payment._finish_insufficient_funds()
    return await payment._send(kyc)


async def _review_hits_unheld(payment: PaymentWorkflow) -> PaymentView | None:
    """The review before LIMITS_AND_BLOCKING (nothing held yet); None when approved."""
    await payment._transition(PaymentStatus.IN_REVIEW)
    await workflow.wait_condition(
        lambda: payment._review is not None or payment._cancel is not None
    )
    if payment._review is None:
        return await payment._finish_canceled(held=False)
    if payment._review.decision == ReviewDecision.REJECT:
        return await payment._finish(
            PaymentStatus.REJECTED,
            Failure(
                FailureCode.SANCTIONS_REJECTED,
                f"screening hit confirmed by {payment._review.reviewer}",
            ),
        )
    # before RECHECK_KYC_AFTER_REVIEW, an approval went straight on to the hold
    if is_patched(RECHECK_KYC_AFTER_REVIEW):
        request = payment._payment
        kyc = await payment._run(
            CHECK_DEBTOR_KYC, KycCheckInput(request.tenant_id, request.customer_id)
        )
        if not kyc.approved:
            return await payment._finish(
                PaymentStatus.REJECTED,
                Failure(FailureCode.KYC_NOT_APPROVED, f"debtor KYC is {kyc.status}"),
            )
    await payment._transition(PaymentStatus.PROCESSING)
    return None


async def submit_without_asking(payment: PaymentWorkflow, debtor_name: str) -> bool:
    """Submission before ASK_BANK_BEFORE_RESEND: past the retry budget the payment waits for
    ops without asking the bank, and a retry sends again. False if canceled."""
    request = payment._submit_request(debtor_name)
    budget = payment._submit_budget()
    while True:
        try:
            result = await payment._run(SUBMIT_TO_RAIL, request, retry=budget)
            payment._message_id = result.message_id
            payment._reference = result.reference
            if payment._payment.rail != "ach" or await _ach_file_reached_bank(payment):
                return True
            # the window's file never got to the bank: the next try joins a later file
            request.not_in_file = result.message_id
            payment._message_id = None
            payment._file_status = None
        except ActivityError as err:
            workflow.logger.warning("rail submission failed: %s", err.cause)
        # reset before announcing action_required: a retry sent as soon as ops see it
        # must not be forgotten
        payment._retry_requested = False
        await payment._transition(PaymentStatus.ACTION_REQUIRED)
        await workflow.wait_condition(
            lambda: payment._retry_requested or payment._cancel is not None
        )
        if payment._cancel is not None:
            return False
        await payment._transition(PaymentStatus.PROCESSING)


async def _ach_file_reached_bank(payment: PaymentWorkflow) -> bool:
    """Wait for the batch workflow's word on the window's file (ACCP, RJCT or NOTSENT)."""
    await workflow.wait_condition(
        lambda: (
            payment._file_status is not None
            or payment._rail_event is not None
            or payment._return_event is not None
        )
    )
    return payment._file_status != RailStatus.NOT_SENT
