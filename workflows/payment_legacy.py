"""Paths of the payment workflow that only histories recorded before a patch still take.

Nothing new starts on them: `workflows/payment.py` reads as today's flow and calls in here
only where a patch (workflows/patches.py) says the history predates it. Each function names
the patch that retired it; it is deleted with that patch's old branch (docs/versioning.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models.payment import (
        Failure,
        KycCheckInput,
        KycCheckResult,
        PaymentView,
        ScreeningResult,
    )
    from workflows.models.vocabulary import FailureCode, PaymentStatus, ReviewDecision
    from workflows.patches import RECHECK_KYC_AFTER_REVIEW, is_patched
    from workflows.steps import CHECK_DEBTOR_KYC

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
