"""Rotating a webhook secret: both secrets sign deliveries during the overlap, then only the
new one (Standard Webhooks allows several `v1,` signatures in one header)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import ActivityEnvironment

from activities.notify import WebhookActivities
from activities.webhook_http import webhook_client
from kernel.tables import webhook_endpoints
from ops.devstack import Stack
from services.events import new_secret
from tests.integration.webhook_support import new_event, partner_api, signed_with
from tests.loopback_http import http_answer, serving
from workflows.models import DeliveryInput


async def test_a_rotated_secret_signs_with_both_until_the_overlap_ends(
    database: Stack, engine: AsyncEngine
) -> None:
    # dev settings: the receiver is on loopback
    settings = database.settings
    async with (
        serving(http_answer("200 OK", {})) as receiver,
        partner_api(settings) as (partner, tenant_id),
        webhook_client(settings) as http,
    ):
        created = await partner.post(
            "/v1/webhook-endpoints", json={"url": f"http://127.0.0.1:{receiver.port}/hooks"}
        )
        assert created.status_code == 201, created.text
        endpoint_id, old_secret = created.json()["id"], created.json()["secret"]
        assert created.json()["previous_secret_expires_at"] is None

        rotated = await partner.post(f"/v1/webhook-endpoints/{endpoint_id}/rotate-secret")
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()
        assert new["secret"].startswith("whsec_") and new["secret"] != old_secret
        assert new["previous_secret_expires_at"] is not None
        listed = (await partner.get("/v1/webhook-endpoints")).json()["data"]
        assert [(e["id"], e["secret"]) for e in listed] == [(endpoint_id, None)]

        deliver = WebhookActivities(engine, http, settings).deliver_webhook
        first = await new_event(engine, tenant_id)
        await ActivityEnvironment().run(deliver, DeliveryInput(first, endpoint_id))
        assert signed_with(new["secret"], receiver, 0)
        assert signed_with(old_secret, receiver, 0)
        assert not signed_with(new_secret(), receiver, 0)

        # the overlap is over: the previous secret signs no more
        async with engine.begin() as conn:
            await conn.execute(
                update(webhook_endpoints)
                .where(webhook_endpoints.c.id == endpoint_id)
                .values(previous_secret_expires_at=webhook_endpoints.c.created_at)
            )
        second = await new_event(engine, tenant_id)
        await ActivityEnvironment().run(deliver, DeliveryInput(second, endpoint_id))
        assert signed_with(new["secret"], receiver, 1)
        assert not signed_with(old_secret, receiver, 1)

        stranger = await partner.post("/v1/webhook-endpoints/we_nothere/rotate-secret")
        assert (stranger.status_code, stranger.json()["code"]) == (
            404,
            "webhook_endpoint_not_found",
        )
