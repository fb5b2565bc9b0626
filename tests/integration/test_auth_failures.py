"""Guessing API keys costs time: past a few failed authentications a source address is
refused (429 with Retry-After), valid key or not, while other addresses carry on (#16 item 8).

The API runs in-process (httpx's ASGI transport, which names the client address) on the
real PostgreSQL, so two addresses can be told apart without any network."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp

from api.__main__ import server_config
from api.app import create_app
from kernel.api_keys import create_key, ensure_tenant
from kernel.db import dispose_engines, get_engine
from kernel.settings import Settings
from ops.devstack import Stack

LIMIT = 3


@pytest.fixture
async def app(database: Stack) -> AsyncIterator[FastAPI]:
    settings = database.settings.updated({"api.auth_failures_per_minute": LIMIT})
    app = create_app(settings)
    # the routes under test read only the database: the lifespan's other resources
    # (Temporal, watch lists) are not needed
    app.state.engine = get_engine(settings)
    app.state.settings = settings
    yield app
    await dispose_engines()


async def partner_key(database: Stack) -> str:
    tenant = f"ten_{uuid.uuid4().hex[:12]}"
    async with get_engine(database.settings).begin() as conn:
        await ensure_tenant(conn, tenant)
        return await create_key(
            conn, tenant_id=tenant, principal="partner-app", scopes=["payments:read"]
        )


def client_from(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://api.test")


async def test_an_address_that_keeps_failing_is_refused_and_others_are_not(
    app: FastAPI, database: Stack
) -> None:
    good = {"Authorization": f"Bearer {await partner_key(database)}"}
    wrong = {"Authorization": "Bearer psk_000000000000_guess"}
    async with (
        client_from(app, "203.0.113.7") as guesser,
        client_from(app, "198.51.100.9") as other,
    ):
        failed = [await guesser.get("/v1/payments", headers=wrong) for _ in range(LIMIT)]
        assert [r.status_code for r in failed] == [401] * LIMIT
        # the address is out of attempts: refused before its key is looked at, even a valid one
        for headers in (wrong, good, {}):
            refused = await guesser.get("/v1/payments", headers=headers)
            assert refused.status_code == 429, refused.text
            assert refused.json()["code"] == "rate_limited"
            assert int(refused.headers["Retry-After"]) >= 1
        # the codec server's door counts the same failures
        codec = await guesser.post("/codec/decode", json={"payloads": []}, headers=wrong)
        assert codec.status_code == 429, codec.text
        # another address is untouched, and a valid key never counts as a failure
        assert (await other.get("/v1/payments", headers=wrong)).status_code == 401
        for _ in range(LIMIT + 2):
            assert (await other.get("/v1/payments", headers=good)).status_code == 200


def served_as_configured(app: FastAPI, trusted: str) -> ASGIApp:
    """The application as `python -m api` serves it: wrapped by uvicorn per its config."""
    settings: Settings = app.state.settings
    config = server_config(settings.updated({"api.forwarded_allow_ips": trusted}), app)
    config.load()
    served: ASGIApp = config.loaded_app
    return served


def peer(app: ASGIApp, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://api.test")


async def exhaust(client: httpx.AsyncClient, forwarded_for: str) -> list[int]:
    """Statuses of LIMIT failed authentications and one more, claiming `forwarded_for`."""
    headers = {"Authorization": "Bearer psk_000000000000_guess", "X-Forwarded-For": forwarded_for}
    answers = [await client.get("/v1/payments", headers=headers) for _ in range(LIMIT + 1)]
    return [answer.status_code for answer in answers]


async def test_a_forged_forwarded_for_from_an_untrusted_peer_is_ignored(app: FastAPI) -> None:
    # nothing trusted (the default): a guesser cannot spread its failures over made-up
    # addresses, each "new" address is still its own TCP peer
    served = served_as_configured(app, "")
    async with peer(served, "203.0.113.20") as guesser:
        assert await exhaust(guesser, "198.51.100.1") == [401] * LIMIT + [429]
        assert await exhaust(guesser, "198.51.100.2") == [429] * (LIMIT + 1)
    # a proxy is trusted, but this peer is not it: the same
    served = served_as_configured(app, "10.0.0.5")
    async with peer(served, "203.0.113.21") as guesser:
        assert await exhaust(guesser, "198.51.100.3") == [401] * LIMIT + [429]
        assert await exhaust(guesser, "198.51.100.4") == [429] * (LIMIT + 1)


async def test_a_trusted_proxys_forwarded_for_names_the_client(app: FastAPI) -> None:
    # behind the ingress every request comes from its address: the limit keys on the client
    # it names, so one client's failures do not lock out the others
    served = served_as_configured(app, "10.0.0.0/24")
    async with peer(served, "10.0.0.5") as ingress:
        assert await exhaust(ingress, "198.51.100.7") == [401] * LIMIT + [429]
        assert await exhaust(ingress, "198.51.100.8") == [401] * LIMIT + [429]
        # the first client stays refused: its failures were counted under its own address
        assert (await exhaust(ingress, "198.51.100.7"))[0] == 429
