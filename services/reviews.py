"""The four-eyes `review` update shared by payments and customers, its refusals as service
errors."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from services.errors import ConflictError, ForbiddenError
from workflows.models import ReviewInput


async def send_review(
    handle: WorkflowHandle[Any, Any],
    update: Any,
    review: ReviewInput,
    not_in_review: ConflictError,
) -> Any:
    """Deliver a review and return the update's result: `ForbiddenError` (code
    `four_eyes_violation`) for the initiator, `not_in_review` when the workflow refuses it or
    has finished."""
    try:
        return await handle.execute_update(update, review)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.type == "four_eyes_violation":
            raise ForbiddenError("four_eyes_violation", cause.message) from err
        raise not_in_review from err
    except RPCError as err:
        # the workflow has finished (or never existed): nothing to review any more
        raise not_in_review from err
