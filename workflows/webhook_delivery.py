"""Deliver one event to one webhook endpoint, retrying with backoff for up to three days.

One workflow per (event, endpoint), id `whd_<event>_<endpoint>`: starting it twice is
harmless, and ops see every delivery and its attempts in the Web UI.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models.webhooks import DeliveryInput, DeliveryResult
    from workflows.steps import DELIVER_WEBHOOK


def delivery_workflow_id(event_id: str, endpoint_id: str) -> str:
    """The workflow id of one delivery."""
    return f"whd_{event_id}_{endpoint_id}"


@workflow.defn(name="WebhookDelivery")
class WebhookDeliveryWorkflow:
    """Retries `deliver_webhook` until the endpoint answers 2xx or three days pass."""

    @workflow.run
    async def run(self, delivery: DeliveryInput) -> DeliveryResult:
        """Deliver, or give up after the window (the event stays listed in /v1/events)."""
        retry = dataclasses.replace(
            DELIVER_WEBHOOK.retry,
            initial_interval=timedelta(seconds=delivery.initial_retry_seconds),
        )
        return await DELIVER_WEBHOOK.run(delivery, retry=retry)
