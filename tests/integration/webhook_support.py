"""Helpers for webhook tests: the API app in process with chosen settings, events written
directly, deliveries run as the worker runs them, and a receiver's signature check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.db import dispose_engines, get_engine
from kernel.settings import Settings
from ops.devstack import Stack
from services.events import insert_event
from tests.integration.helpers import make_keys
from tests.loopback_http import LoopbackServer


@asynccontextmanager
async def partner_api(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """The API app built with `settings`, in process, and a partner key of a fresh tenant."""
    from api.app import create_app

    tenant_id = f"ten_{uuid.uuid4().hex[:12]}"
    stack = Stack(settings, web_ui=False)
    partner_key, _ = await make_keys(stack, tenant_id)
    app = create_app(settings)
    # what the lifespan would set; these routes need neither Temporal nor the watch lists
    app.state.settings = settings
    app.state.engine = get_engine(settings)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {partner_key}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as c:
        yield c, tenant_id
    await dispose_engines()


async def new_event(engine: AsyncEngine, tenant_id: str) -> str:
    """A `payment.settled` event of the tenant (which exists), written directly."""
    event_id = f"evt_{uuid.uuid4().hex[:16]}"
    async with engine.begin() as conn:
        await insert_event(
            conn,
            event_id=event_id,
            tenant_id=tenant_id,
            type="payment.settled",
            data={"payment_id": "pay_x"},
            at=datetime.now(UTC),
        )
    return event_id


def signed_with(secret: str, receiver: LoopbackServer, index: int) -> bool:
    """Whether one of the signatures of the receiver's `index`-th delivery is made with
    `secret` (a receiver's own reading of Standard Webhooks)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    message_id = receiver.header(index, b"webhook-id")
    timestamp = receiver.header(index, b"webhook-timestamp")
    signed = message_id + b"." + timestamp + b"." + receiver.requests[index][1]
    expected = b"v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    return expected in receiver.header(index, b"webhook-signature").split(b" ")
