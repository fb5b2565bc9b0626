"""The four-eyes `review` update shared by payments and customers, its refusals as service
errors."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from kernel.review_tokens import mint, principal_id
from kernel.settings import ReviewSettings, secret_list
from services.errors import ConflictError, ForbiddenError
from workflows.models import ReviewInput


@dataclass(frozen=True)
class Reviewer:
    """Who reviews, as the door they came through authenticated them."""

    name: str
    tenant_id: str

    @property
    def principal_id(self) -> str:
        """The identity four-eyes compares (a name within its tenant)."""
        return principal_id(self.tenant_id, self.name)


def signed_review(
    settings: ReviewSettings, subject: str, decision: str, reviewer: Reviewer, note: str
) -> ReviewInput:
    """The review with a token proving it (kernel/review_tokens.py), valid for a few minutes."""
    expires_at = int(time.time()) + settings.token_ttl_seconds
    token = mint(
        secret_list(settings.token_secrets)[0],
        subject=subject,
        decision=decision,
        principal=reviewer.principal_id,
        expires_at=expires_at,
    )
    return ReviewInput(
        decision=decision,
        reviewer=reviewer.name,
        note=note,
        reviewer_id=reviewer.principal_id,
        token=token,
    )


async def send_review(
    handle: WorkflowHandle[Any, Any],
    update: Any,
    review: ReviewInput,
    not_in_review: ConflictError,
) -> Any:
    """Deliver a review and return the update's result: `ForbiddenError` (code
    `four_eyes_violation`) for the initiator, (`review_token_invalid`) when the worker cannot
    verify the token (the API's and the workers' secrets differ, or it expired on the way),
    `not_in_review` when the workflow refuses it or has finished."""
    try:
        return await handle.execute_update(update, review)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type in (
            "four_eyes_violation",
            "review_token_invalid",
        ):
            raise ForbiddenError(cause.type, cause.message) from err
        raise not_in_review from err
    except RPCError as err:
        # the workflow has finished (or never existed): nothing to review any more
        raise not_in_review from err
