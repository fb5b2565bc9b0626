"""Webhooks: events become signed HTTP deliveries (Standard Webhooks), one workflow each.

Signature (standardwebhooks.com): `webhook-signature: v1,<base64 HMAC-SHA256>` over
`<webhook-id>.<webhook-timestamp>.<body>`, keyed with the base64 part of the endpoint's
`whsec_…` secret; during a secret rotation's overlap, a second, space-separated signature
with the previous secret.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.webhook_http import post_to_target
from kernel.settings import Settings
from kernel.tables import events, webhook_deliveries, webhook_endpoints
from services.outbound_guard import (
    DestinationNotAllowed,
    DestinationUnresolvable,
    Resolver,
    system_resolver,
    vet_url,
)
from workflows.models import DeliveryInput, DeliveryResult


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for a delivery."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signing_secrets(endpoint: Any) -> list[str]:
    """The secrets a delivery is signed with: the endpoint's, and during a rotation's
    overlap its previous one (Standard Webhooks: one `v1,` signature per secret)."""
    secrets = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret is not None and expires is not None and expires > datetime.now(UTC):
        secrets.append(endpoint.previous_secret)
    return secrets


def event_body(event_id: str, event_type: str, created_at: str, data: dict[str, Any]) -> bytes:
    """The JSON a receiver gets."""
    payload = {"id": event_id, "type": event_type, "created_at": created_at, "data": data}
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def event_query(event_id: str) -> Select[Any]:
    """The event a delivery sends (by primary key; its plan is checked in
    tests/integration/test_query_plans.py)."""
    return select(events).where(events.c.id == event_id)


class WebhookActivities:
    """Sends one signed delivery; the workflow's retry policy does the backoff.

    `http` is the client of `webhook_client` (no redirects, no proxy, no pooled connection
    reused across host names); every attempt vets the endpoint's URL again, since DNS may
    have changed since registration (or the endpoint predates the guard).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        http: httpx.AsyncClient,
        settings: Settings,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._engine = engine
        self._http = http
        self._settings = settings
        self._resolver = resolver

    @activity.defn(name="deliver_webhook")
    async def deliver_webhook(self, delivery: DeliveryInput) -> DeliveryResult:
        """POST the event; a non-2xx answer or a network error raises (and is retried); a URL
        the outbound guard refuses fails the delivery for good (`webhook_url_not_allowed`)."""
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
            "webhook-signature": " ".join(
                sign(secret, event.id, timestamp, body) for secret in signing_secrets(endpoint)
            ),
        }
        try:
            target = await vet_url(
                endpoint.url,
                allow_private=self._settings.webhooks.allow_private_networks,
                resolver=self._resolver,
            )
        except DestinationNotAllowed as refused:
            await self._record(delivery, attempt, 0, f"{refused.code}: {refused}"[:500])
            raise ApplicationError(str(refused), type=refused.code, non_retryable=True) from None
        except DestinationUnresolvable as unresolved:
            # DNS may answer on a later attempt
            await self._record(delivery, attempt, 0, f"{unresolved.code}: {unresolved}"[:500])
            raise RuntimeError(str(unresolved)) from None
        status, error = 0, None
        try:
            async with asyncio.timeout(self._settings.webhooks.total_timeout_seconds):
                answer = await post_to_target(self._http, target, body, headers)
            status = answer.status
        except (httpx.HTTPError, TimeoutError) as err:
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
