"""Webhooks cannot reach inside (issue #16 item 4): with private networks not allowed, no
spelling of a loopback URL registers, and an endpoint already stored with one (registered
before the guard, or whose DNS changed) gets no delivery. Every receiver here listens on
loopback; no test resolves a name through real DNS.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.notify import WebhookActivities
from activities.webhook_http import webhook_client
from kernel.api_keys import ensure_tenant
from kernel.db import get_engine
from kernel.settings import Settings
from kernel.tables import webhook_deliveries, webhook_endpoints
from ops.devstack import Stack
from services.errors import InvalidRequestError
from services.events import insert_event, new_secret
from services.webhook_endpoints import register_endpoint
from tests.integration.webhook_support import partner_api
from tests.loopback_http import http_answer, serving
from workflows.models import DeliveryInput

REBOUND_NAME = "rebound.partner.example"


async def rebound_resolver(host: str) -> list[str]:
    """DNS as an attacker runs it: a public-looking name that now points at loopback."""
    assert host == REBOUND_NAME, f"unexpected resolution of {host!r}"
    return ["127.0.0.1"]


def loopback_spellings(port: int) -> list[str]:
    """The eight spellings of a loopback URL the SSRF report found accepted."""
    return [
        f"http://127.0.0.1:{port}/hooks",
        f"http://localhost:{port}/hooks",
        f"http://127.1:{port}/hooks",
        f"http://2130706433:{port}/hooks",
        f"http://0x7f000001:{port}/hooks",
        f"http://[::ffff:127.0.0.1]:{port}/hooks",
        f"http://localhost.:{port}/hooks",
        f"http://{REBOUND_NAME}:{port}/hooks",
    ]


def guarded(settings: Settings) -> Settings:
    """The stack's settings as production has them: private networks not allowed."""
    return settings.updated({"webhooks.allow_private_networks": False})


async def endpoint_count(engine: AsyncEngine, tenant_id: str) -> int:
    async with engine.connect() as conn:
        count: int = (
            await conn.execute(
                select(func.count()).where(webhook_endpoints.c.tenant_id == tenant_id)
            )
        ).scalar_one()
    return count


async def test_no_spelling_of_a_loopback_url_registers(database: Stack) -> None:
    settings = guarded(database.settings)
    async with partner_api(settings) as (partner, tenant_id):
        # the last spelling needs a resolver that lies; the service test below has one
        for url in loopback_spellings(8000)[:-1]:
            refused = await partner.post("/v1/webhook-endpoints", json={"url": url})
            assert refused.status_code == 422, (url, refused.text)
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert (refused.json()["code"], refused.json()["param"]) == (
                "webhook_url_not_allowed",
                "url",
            )
        listed = (await partner.get("/v1/webhook-endpoints")).json()
        assert listed["data"] == []
        assert await endpoint_count(get_engine(settings), tenant_id) == 0


async def test_a_name_resolving_to_loopback_does_not_register(engine: AsyncEngine) -> None:
    tenant_id = f"ten_{uuid.uuid4().hex[:12]}"
    settings = Settings().updated({"webhooks.allow_private_networks": False})
    with pytest.raises(InvalidRequestError) as refused:
        await register_endpoint(
            engine,
            settings,
            tenant_id=tenant_id,
            url=f"https://{REBOUND_NAME}/hooks",
            description=None,
            resolver=rebound_resolver,
        )
    assert refused.value.code == "webhook_url_not_allowed"
    assert await endpoint_count(engine, tenant_id) == 0


async def test_a_tenant_has_a_bounded_number_of_enabled_endpoints(database: Stack) -> None:
    # loopback receivers are allowed here (dev): this test is about the count
    settings = database.settings.updated({"webhooks.max_endpoints_per_tenant": 2})
    async with partner_api(settings) as (partner, _tenant_id):
        created = []
        for n in range(2):
            answer = await partner.post(
                "/v1/webhook-endpoints", json={"url": f"http://127.0.0.1:9/hooks/{n}"}
            )
            assert answer.status_code == 201, answer.text
            created.append(answer.json()["id"])
        beyond = await partner.post(
            "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hooks/2"}
        )
        assert beyond.status_code == 409, beyond.text
        assert beyond.json()["code"] == "webhook_endpoint_limit_reached"
        # a disabled endpoint no longer counts
        assert (await partner.delete(f"/v1/webhook-endpoints/{created[0]}")).status_code == 200
        again = await partner.post(
            "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hooks/2"}
        )
        assert again.status_code == 201, again.text


async def stored_endpoints(engine: AsyncEngine, tenant_id: str, urls: list[str]) -> list[str]:
    """Endpoint rows written directly, as if registered before the guard existed."""
    ids = [f"we_{uuid.uuid4().hex[:16]}" for _ in urls]
    async with engine.begin() as conn:
        await conn.execute(
            webhook_endpoints.insert(),
            [
                {"id": endpoint_id, "tenant_id": tenant_id, "url": url, "secret": new_secret()}
                for endpoint_id, url in zip(ids, urls, strict=True)
            ],
        )
    return ids


async def test_a_stored_loopback_endpoint_gets_no_delivery(
    engine: AsyncEngine, database: Stack
) -> None:
    tenant_id = f"ten_{uuid.uuid4().hex[:12]}"
    event_id = f"evt_{uuid.uuid4().hex[:16]}"
    async with engine.begin() as conn:
        await ensure_tenant(conn, tenant_id)
        await insert_event(
            conn,
            event_id=event_id,
            tenant_id=tenant_id,
            type="payment.settled",
            data={"payment_id": "pay_x"},
            at=datetime.now(UTC),
        )
    settings = guarded(database.settings)
    async with serving(http_answer("200 OK", {})) as receiver, webhook_client(settings) as http:
        endpoint_ids = await stored_endpoints(engine, tenant_id, loopback_spellings(receiver.port))
        activities = WebhookActivities(engine, http, settings, resolver=rebound_resolver)
        for endpoint_id in endpoint_ids:
            with pytest.raises(ApplicationError) as refused:
                await ActivityEnvironment().run(
                    activities.deliver_webhook, DeliveryInput(event_id, endpoint_id)
                )
            assert refused.value.type == "webhook_url_not_allowed"
            assert refused.value.non_retryable
        assert receiver.requests == []
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(webhook_deliveries).where(webhook_deliveries.c.event_id == event_id)
                )
            ).all()
        assert sorted(row.endpoint_id for row in rows) == sorted(endpoint_ids)
        assert all(row.delivered_at is None for row in rows)
        assert all(row.last_error.startswith("webhook_url_not_allowed:") for row in rows)

        # the same receiver, with private networks allowed (dev), does get the delivery: what
        # kept it out above was the guard
        dev = WebhookActivities(engine, http, database.settings, resolver=rebound_resolver)
        delivered = await ActivityEnvironment().run(
            dev.deliver_webhook, DeliveryInput(event_id, endpoint_ids[-1])
        )
        assert delivered.status == 200
        assert len(receiver.requests) == 1
        assert receiver.header(0, b"host") == f"{REBOUND_NAME}:{receiver.port}".encode()
