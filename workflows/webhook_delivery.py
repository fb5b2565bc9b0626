"""Deliver one event to one webhook endpoint, retrying with backoff for up to three days.

One workflow per (event, endpoint), id `whd_<event>_<endpoint>`: starting it twice is
harmless, and ops see every delivery and its attempts in the Web UI.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.models import DeliveryInput, DeliveryResult
    from workflows.queues import activity_queue

DELIVERY_WINDOW = timedelta(days=3)


def delivery_workflow_id(event_id: str, endpoint_id: str) -> str:
    """The workflow id of one delivery."""
    return f"whd_{event_id}_{endpoint_id}"


@workflow.defn(name="WebhookDelivery")
class WebhookDeliveryWorkflow:
    """Retries `deliver_webhook` until the endpoint answers 2xx or three days pass."""

    @workflow.run
    async def run(self, delivery: DeliveryInput) -> DeliveryResult:
        """Deliver, or give up after the window (the event stays listed in /v1/events)."""
        result: DeliveryResult = await workflow.execute_activity(
            "deliver_webhook",
            delivery,
            task_queue=activity_queue(workflow.info().task_queue, "deliver_webhook"),
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=DELIVERY_WINDOW,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=delivery.initial_retry_seconds),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(hours=1),
            ),
            result_type=DeliveryResult,
        )
        return result
