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
import time
from typing import Any

import httpx
from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from kernel.tables import events, webhook_deliveries, webhook_endpoints
from workflows.models import DeliveryInput, DeliveryResult


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for a delivery."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def event_body(event_id: str, event_type: str, created_at: str, data: dict[str, Any]) -> bytes:
    """The JSON a receiver gets."""
    payload = {"id": event_id, "type": event_type, "created_at": created_at, "data": data}
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def event_query(event_id: str) -> Select[Any]:
    """The event a delivery sends (by primary key; its plan is checked in
    tests/integration/test_query_plans.py)."""
    return select(events).where(events.c.id == event_id)


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
