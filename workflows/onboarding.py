"""Customer onboarding (DESIGN §5, issue #4): one workflow per customer, id = customer id.

Screen the customer (sanctions and PEP lists, recording the list versions) → apply the KYC
rules → record the decision (customer row, audit entry). An `in_review` customer waits
for a four-eyes `review` update; a review left waiting past the escalation time is flagged
(search attribute ReviewEscalated, audit entry) and keeps waiting: it is never decided by time.
The re-verification date is stored with every decision; the workflow ends once decided.
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    import workflows.search_attributes as sa  # passed through (see workflows/payment.py)
    from compliance.kyc import RiskTier, review_date_for
    from workflows.models.common import ReviewInput, ReviewResult
    from workflows.models.onboarding import (
        CustomerRef,
        CustomerScreeningResult,
        KycEscalationInput,
        KycEvaluation,
        KycEvaluationInput,
        OnboardingInput,
        OnboardingView,
        RecordKycInput,
    )
    from workflows.models.vocabulary import KycStatus, ReviewDecision
    from workflows.patches import REVIEW_TOKENS_ONBOARDING, is_patched
    from workflows.review_gate import pass_review_gate
    from workflows.steps import (
        EVALUATE_CUSTOMER_KYC,
        RECORD_KYC_DECISION,
        RECORD_KYC_ESCALATION,
        SCREEN_CUSTOMER,
    )

RULES_ACTOR = "kyc-rules"


@workflow.defn(name="Onboarding")
class OnboardingWorkflow:
    """Takes one customer from `pending` to a KYC decision; see the module docstring."""

    @workflow.init
    def __init__(self, request: OnboardingInput) -> None:
        self._request = request
        self._status = KycStatus.PENDING
        self._evaluation: KycEvaluation | None = None
        self._screening = CustomerScreeningResult()
        # the current status is persisted (the API shows it)
        self._recorded = False
        self._review: ReviewInput | None = None
        self._review_checking = False
        self._escalated = False

    @workflow.run
    async def run(self, request: OnboardingInput) -> OnboardingView:
        """Screen, decide, and (in review) wait for a person's decision."""
        ref = CustomerRef(request.customer_id, request.tenant_id)
        self._screening = await SCREEN_CUSTOMER.run(ref)
        evaluation = await EVALUATE_CUSTOMER_KYC.run(
            KycEvaluationInput(
                request.customer_id,
                request.tenant_id,
                workflow.now().date().isoformat(),
                self._screening,
            )
        )
        await self._decide(evaluation, step="rules", decided_by=RULES_ACTOR)
        if self._status == KycStatus.IN_REVIEW:
            await self._await_review(evaluation)
        # callers waiting on `decided` or `review` get their answer before the workflow ends
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    async def _await_review(self, evaluation: KycEvaluation) -> None:
        request = self._request
        try:
            await workflow.wait_condition(
                lambda: self._review is not None,
                timeout=timedelta(seconds=request.review_escalation_seconds),
            )
        except TimeoutError:
            await RECORD_KYC_ESCALATION.run(
                KycEscalationInput(
                    request.customer_id,
                    request.tenant_id,
                    request.review_escalation_seconds,
                    list(evaluation.reasons),
                )
            )
            self._escalated = True
            workflow.upsert_search_attributes([sa.REVIEW_ESCALATED.value_set(True)])
            await workflow.wait_condition(lambda: self._review is not None)
        review = self._review
        assert review is not None
        approved = review.decision == ReviewDecision.APPROVE
        outcome = "approved" if approved else "rejected"
        # an approval starts the re-verification period afresh
        review_date = (
            review_date_for(cast(RiskTier, evaluation.risk_tier), workflow.now().date()).isoformat()
            if approved
            else evaluation.review_date
        )
        await self._decide(
            KycEvaluation(
                status=outcome,
                risk_tier=evaluation.risk_tier,
                review_date=review_date,
                reasons=[*evaluation.reasons, f"{outcome} on review by {review.reviewer}"],
                notes=list(evaluation.notes),
            ),
            step="review",
            decided_by=review.reviewer,
            note=review.note,
        )

    async def _decide(
        self, evaluation: KycEvaluation, *, step: str, decided_by: str, note: str = ""
    ) -> None:
        """Adopt a decision, persist it for the API, then publish the search attribute.

        Adopted before it is persisted, so a review sent as soon as the API shows `in_review`
        is accepted by the workflow.
        """
        self._evaluation = evaluation
        self._status = KycStatus(evaluation.status)
        self._recorded = False
        await RECORD_KYC_DECISION.run(
            RecordKycInput(
                self._request.customer_id,
                self._request.tenant_id,
                step,
                evaluation,
                workflow.now().isoformat(),
                decided_by,
                note,
                screening=self._screening if step == "rules" else None,
            )
        )
        self._recorded = True
        workflow.upsert_search_attributes([sa.KYC_STATUS.value_set(evaluation.status)])

    # --- updates and queries ------------------------------------------------------------

    @workflow.query
    def status(self) -> OnboardingView:
        """KYC status, risk tier, re-verification date, reasons, screening hits."""
        evaluation = self._evaluation
        return OnboardingView(
            customer_id=self._request.customer_id,
            status=self._status.value,
            risk_tier=evaluation.risk_tier if evaluation else "",
            review_date=evaluation.review_date if evaluation else "",
            reasons=list(evaluation.reasons) if evaluation else [],
            notes=list(evaluation.notes) if evaluation else [],
            hits=self._screening.hits,
            list_versions=dict(self._screening.list_versions),
            escalated=self._escalated,
            reviewed_by=self._review.reviewer if self._review else "",
        )

    @workflow.update
    async def decided(self) -> OnboardingView:
        """Wait until the rules' decision is persisted (POST /v1/customers answers with it)."""
        await workflow.wait_condition(lambda: self._status != KycStatus.PENDING and self._recorded)
        return self.status()

    @workflow.update
    async def review(self, decision: ReviewInput) -> ReviewResult:
        """Approve or reject a customer in review (four-eyes: not its creator)."""
        if is_patched(REVIEW_TOKENS_ONBOARDING):
            self._review_checking = True
            try:
                await pass_review_gate(
                    decision, tenant_id=self._request.tenant_id, initiator=self._request.created_by
                )
            finally:
                self._review_checking = False
        self._review = decision
        await workflow.wait_condition(
            lambda: self._status != KycStatus.IN_REVIEW and self._recorded
        )
        return ReviewResult(self._status.value)

    @review.validator
    def _validate_review(self, decision: ReviewInput) -> None:
        if self._review_checking:
            raise ApplicationError("another review is being checked", type="invalid_state")
        if self._status != KycStatus.IN_REVIEW or self._review is not None:
            raise ApplicationError(
                f"customer KYC is {self._status.value}, not in_review", type="invalid_state"
            )
        if decision.decision not in set(ReviewDecision):
            raise ApplicationError("decision must be approve or reject", type="invalid_decision")
        if decision.reviewer == self._request.created_by:
            raise ApplicationError(
                "the creator of a customer cannot review it", type="four_eyes_violation"
            )
