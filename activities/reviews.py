"""Checks a four-eyes review's token before the workflow accepts it (kernel/review_tokens.py).

The check runs as an activity so the secret stays in the worker and out of every history. A
refused review is a security event: someone reached Temporal without going through the API,
or replayed an old decision. It leaves an audit record naming what was claimed, and a
counter ops alert on.
"""

from __future__ import annotations

import time

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from activities.metrics import count
from kernel import audit
from kernel.review_tokens import refusal
from workflows.models.common import ReviewTokenCheck, ReviewTokenInput

log = structlog.get_logger(__name__)


class ReviewActivities:
    """Verifies review tokens with the configured secrets."""

    def __init__(self, engine: AsyncEngine, secrets: list[str]) -> None:
        self._engine = engine
        self._secrets = secrets

    @activity.defn(name="verify_review_token")
    async def verify_review_token(self, request: ReviewTokenInput) -> ReviewTokenCheck:
        """Whether the review's token proves its decision, workflow and reviewer."""
        reason = refusal(
            self._secrets,
            request.token,
            subject=request.subject,
            decision=request.decision,
            principal=request.reviewer_id,
            now=time.time(),
        )
        if reason is None:
            return ReviewTokenCheck(valid=True)
        # idempotent per attempt of this activity: a retried check records the refusal once
        info = activity.info()
        await audit.append(
            self._engine,
            actor=request.reviewer or "unknown",
            action="review.refused",
            subject=request.subject,
            tenant_id=request.tenant_id or None,
            detail={
                "decision": request.decision,
                "claimed_reviewer_id": request.reviewer_id,
                "reason": reason,
            },
            idempotency_key=f"{info.workflow_id}:{info.workflow_run_id}:{info.activity_id}",
        )
        log.warning("review refused", subject=request.subject, reason=reason)
        count("payments_reviews_refused", "Reviews refused for a missing or invalid token")
        return ReviewTokenCheck(valid=False, reason=reason)
