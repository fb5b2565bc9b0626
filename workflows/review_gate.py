"""The gate every four-eyes `review` update passes before a workflow accepts it.

Shared by the payment and onboarding workflows: the review's token must prove that the
platform authenticated this reviewer for this decision on this workflow (checked by an
activity, which holds the secret: kernel/review_tokens.py), and the reviewer, as the token
names them, must not be the one who started what is reviewed.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from kernel.review_tokens import principal_id
    from workflows import steps
    from workflows.models.common import ReviewInput, ReviewTokenInput


async def pass_review_gate(review: ReviewInput, *, tenant_id: str, initiator: str) -> None:
    """Raise `ApplicationError` (the update fails, the workflow waits on) unless `review`
    came through the API or the CLI for a reviewer other than `initiator`."""
    check = await steps.VERIFY_REVIEW_TOKEN.run(
        ReviewTokenInput(
            subject=workflow.info().workflow_id,
            decision=review.decision,
            reviewer=review.reviewer,
            reviewer_id=review.reviewer_id,
            token=review.token,
            tenant_id=tenant_id,
        ),
        local=True,
    )
    if not check.valid:
        raise ApplicationError(check.reason, type="review_token_invalid", non_retryable=True)
    if review.reviewer_id == principal_id(tenant_id, initiator):
        raise ApplicationError(
            "the principal who started it cannot review it", type="four_eyes_violation"
        )
