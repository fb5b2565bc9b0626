"""Webhooks: events become signed HTTP deliveries (Standard Webhooks), one workflow each.

Signature (standardwebhooks.com): `webhook-signature: v1,<base64 HMAC-SHA256>` over
`<webhook-id>.<webhook-timestamp>.<body>`, keyed with the base64 part of the endpoint's
`whsec_…` secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import httpx
from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from kernel.settings import Settings
from kernel.tables import events, webhook_deliveries, webhook_endpoints
from workflows.models import DeliveryInput, DeliveryResult
from workflows.webhook_delivery import WebhookDeliveryWorkflow, delivery_workflow_id


def new_secret() -> str:
    """A fresh endpoint secret (192 random bits)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for a delivery."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def event_id_for(payment_id: str, seq: int) -> str:
    """The id of the event for a payment's `seq`-th status (stable, so writes are idempotent)."""
    return f"evt_{payment_id.removeprefix('pay_')}_{seq:02d}"


def event_body(event_id: str, event_type: str, created_at: str, data: dict[str, Any]) -> bytes:
    """The JSON a receiver gets."""
    payload = {"id": event_id, "type": event_type, "created_at": created_at, "data": data}
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def event_query(event_id: str) -> Select[Any]:
    """The event a delivery sends (by primary key; its plan is checked in
    tests/integration/test_query_plans.py)."""
    return select(events).where(events.c.id == event_id)


async def enabled_endpoints(conn: AsyncConnection, tenant_id: str) -> list[str]:
    """The ids of the tenant's enabled webhook endpoints."""
    rows = await conn.execute(
        select(webhook_endpoints.c.id).where(
            webhook_endpoints.c.tenant_id == tenant_id,
            webhook_endpoints.c.disabled_at.is_(None),
        )
    )
    return list(rows.scalars().all())


async def start_delivery_workflows(
    client: Client, settings: Settings, event_id: str, endpoint_ids: list[str]
) -> None:
    """Start one delivery workflow per endpoint for the event (idempotent)."""
    for endpoint_id in endpoint_ids:
        await client.start_workflow(
            WebhookDeliveryWorkflow.run,
            DeliveryInput(event_id, endpoint_id, settings.webhook_retry_initial_seconds),
            id=delivery_workflow_id(event_id, endpoint_id),
            task_queue=settings.task_queue,
            # a retried activity or API request finds the delivery already started
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )


class WebhookActivities:
    """Sends one signed delivery; the workflow's retry policy does the backoff."""

    def __init__(self, engine: AsyncEngine, http: httpx.AsyncClient) -> None:
        self._engine = engine
        self._http = http

    @activity.defn(name="deliver_webhook")
    async def deliver_webhook(self, delivery: DeliveryInput) -> DeliveryResult:
        """POST the event; a non-2xx answer or a network error raises (and is retried)."""
        async with self._engine.connect() as conn:
            event = (await conn.execute(event_query(delivery.event_id))).one()
            endpoint = (
                await conn.execute(
                    select(webhook_endpoints).where(webhook_endpoints.c.id == delivery.endpoint_id)
                )
            ).one()
        attempt = activity.info().attempt
        if endpoint.disabled_at is not None:
            return DeliveryResult(0, attempt, skipped=True)
        body = event_body(event.id, event.type, event.created_at.isoformat(), event.data)
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(endpoint.secret, event.id, timestamp, body),
        }
        status, error = 0, None
        try:
            response = await self._http.post(endpoint.url, content=body, headers=headers)
            status = response.status_code
        except httpx.HTTPError as err:
            error = f"{type(err).__name__}: {err}"[:500]
        await self._record(delivery, attempt, status, error)
        if not 200 <= status < 300:
            raise RuntimeError(f"endpoint answered {status or error}")
        return DeliveryResult(status, attempt)

    async def _record(
        self, delivery: DeliveryInput, attempt: int, status: int, error: str | None
    ) -> None:
        delivered = func.now() if 200 <= status < 300 else None
        values = {
            "attempts": attempt,
            "last_status": status or None,
            "last_error": error,
            "delivered_at": delivered,
            "updated_at": func.now(),
        }
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(webhook_deliveries)
                .values(event_id=delivery.event_id, endpoint_id=delivery.endpoint_id, **values)
                .on_conflict_do_update(index_elements=["event_id", "endpoint_id"], set_=values)
            )
