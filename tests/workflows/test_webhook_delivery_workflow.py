"""The webhook delivery workflow on the time-skipping test server, with a fake endpoint.

A delivery is retried with backoff until the endpoint answers, and given up (the workflow
fails; the event stays listed in /v1/events) once the three-day window has passed.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ActivityError, RetryState
from temporalio.testing import WorkflowEnvironment

from tests.workflows.recording import HistoryRecorder
from tests.workflows.support import role_workers, time_skipping_env
from workflows import steps
from workflows.models import DeliveryInput, DeliveryResult
from workflows.steps import implements
from workflows.webhook_delivery import WebhookDeliveryWorkflow, delivery_workflow_id

QUEUE = "webhooks-test"
RECORDER = HistoryRecorder("webhook_delivery")
record_histories = RECORDER.fixture()


@dataclass
class FakeEndpoint:
    """Fails its first `failures` deliveries (the endpoint is down), then answers 204."""

    failures: int
    attempts: int = 0

    def activities(self) -> list[Callable[..., Any]]:
        @implements(steps.DELIVER_WEBHOOK)
        async def deliver(request: DeliveryInput) -> DeliveryResult:
            self.attempts += 1
            if self.attempts <= self.failures:
                raise RuntimeError("endpoint answered 503")
            return DeliveryResult(status=204, attempts=self.attempts)

        return [deliver]


env = pytest.fixture(scope="module")(time_skipping_env)


def worker_for(
    env: WorkflowEnvironment, endpoint: FakeEndpoint
) -> contextlib.AbstractAsyncContextManager[None]:
    return role_workers(env, QUEUE, WebhookDeliveryWorkflow, endpoint.activities())


async def deliver(
    env: WorkflowEnvironment,
) -> WorkflowHandle[WebhookDeliveryWorkflow, DeliveryResult]:
    event_id, endpoint_id = f"evt_{uuid.uuid4().hex[:12]}", "we_test"
    handle = await env.client.start_workflow(
        WebhookDeliveryWorkflow.run,
        DeliveryInput(event_id, endpoint_id, initial_retry_seconds=60),
        id=delivery_workflow_id(event_id, endpoint_id),
        task_queue=QUEUE,
    )
    return RECORDER.track(handle)


async def test_a_failing_endpoint_is_retried_until_it_answers(env: WorkflowEnvironment) -> None:
    endpoint = FakeEndpoint(failures=3)
    async with worker_for(env, endpoint):
        result = await (await deliver(env)).result()  # time skips over the backoff
    assert (result.status, result.attempts) == (204, 4)


async def test_a_delivery_is_given_up_after_the_window(env: WorkflowEnvironment) -> None:
    endpoint = FakeEndpoint(failures=10_000)
    async with worker_for(env, endpoint):
        with pytest.raises(WorkflowFailureError) as gave_up:
            await (await deliver(env)).result()
    failure = gave_up.value.cause
    assert isinstance(failure, ActivityError)
    # the window closed: no more retries, the last answer kept
    assert failure.retry_state == RetryState.TIMEOUT
    assert "503" in str(failure.cause)
    # hourly at most after the backoff reaches an hour: far fewer than 10,000 tries in 3 days
    assert 60 < endpoint.attempts < 100
