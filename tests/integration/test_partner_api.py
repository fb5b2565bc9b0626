"""The partner contract: idempotency under races, keys, limits, problems, signed webhooks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from kernel.api_keys import create_key
from kernel.db import dispose_engines, get_engine
from kernel.tables import payments
from ops.devstack import Stack, free_port, settings_env
from tests.integration.helpers import (
    TERMINAL,
    Tenant,
    create_customer,
    funded_account,
    payment_body,
    wait_for_status,
)


async def key_for(stack: Stack, tenant_id: str, scopes: list[str], rate: int | None = None) -> str:
    async with get_engine(stack.settings).begin() as conn:
        key = await create_key(
            conn,
            tenant_id=tenant_id,
            principal=f"p-{uuid.uuid4().hex[:6]}",
            scopes=scopes,
            rate_limit_per_second=rate,
        )
    await dispose_engines()
    return key


async def test_twenty_concurrent_identical_posts_make_one_payment(
    tenant: Tenant, stack: Stack
) -> None:
    account = await funded_account(tenant, 10_000)
    body = payment_body(account["id"], 100)
    key = {"Idempotency-Key": f"race-{uuid.uuid4()}"}
    responses = await asyncio.gather(
        *(tenant.partner.post("/v1/payments", json=body, headers=key) for _ in range(20))
    )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {202, 409}, statuses
    created = [r for r in responses if r.status_code == 202]
    assert len({r.json()["id"] for r in created}) == 1
    assert sum(1 for r in created if r.headers.get("idempotent-replayed") != "true") == 1
    for conflict in (r for r in responses if r.status_code == 409):
        assert conflict.json()["code"] == "idempotency_request_in_progress"
    payment_id = created[0].json()["id"]
    async with get_engine(stack.settings).connect() as conn:
        count = (
            await conn.execute(
                select(func.count())
                .select_from(payments)
                .where(payments.c.account_id == account["id"])
            )
        ).scalar_one()
    await dispose_engines()
    assert count == 1
    listed = subprocess.run(
        [
            str(Path(sys.executable).parent / "temporal"),
            "workflow",
            "count",
            "--address",
            stack.settings.temporal.address,
            "--query",
            f"WorkflowId='{payment_id}'",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert listed.stdout.strip().endswith("1"), listed.stdout
    final = await wait_for_status(tenant.partner, payment_id, TERMINAL)
    assert final["status"] == "settled"


async def test_revoked_key_is_refused_at_once(tenant: Tenant, stack: Stack) -> None:
    key = await key_for(stack, tenant.tenant_id, ["payments:read"])
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=stack.settings.api.url, headers=headers) as client:
        assert (await client.get("/v1/payments")).status_code == 200
        cli = str(Path(sys.executable).parent / "payments")
        env = settings_env(stack.settings)
        listing = subprocess.run(
            [cli, "keys", "list", "--tenant", tenant.tenant_id],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        prefix = key.split("_")[1]
        line = next(line for line in listing.stdout.splitlines() if prefix in line)
        # secrets are never shown (`psk_<prefix>_<secret>`: the secret may hold "_" too)
        assert key.split("_", 2)[2] not in listing.stdout
        subprocess.run(
            [cli, "keys", "revoke", line.split()[0]], env=env, check=True, capture_output=True
        )
        refused = await client.get("/v1/payments")
    assert refused.status_code == 401
    assert refused.json()["code"] == "invalid_api_key"


async def test_body_size_media_type_and_rate_limit(tenant: Tenant, stack: Stack) -> None:
    huge = {"type": "individual", "name": "x" * 70_000}
    too_large = await tenant.partner.post("/v1/customers", json=huge)
    assert too_large.status_code == 413
    assert too_large.json()["code"] == "payload_too_large"
    not_json = await tenant.partner.post(
        "/v1/customers", content=b"name=Ada", headers={"Content-Type": "text/plain"}
    )
    assert not_json.status_code == 415
    assert not_json.json()["code"] == "unsupported_media_type"
    slow_key = await key_for(stack, tenant.tenant_id, ["payments:read"], rate=2)
    async with httpx.AsyncClient(
        base_url=stack.settings.api.url, headers={"Authorization": f"Bearer {slow_key}"}
    ) as client:
        answers = [await client.get("/v1/payments") for _ in range(6)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert limited[0].json()["code"] == "rate_limited"
    assert int(limited[0].headers["retry-after"]) >= 1
    assert answers[0].status_code == 200


async def test_unexpected_errors_are_problems_that_leak_nothing(stack: Stack) -> None:
    from api.app import create_app

    app = create_app(stack.settings)

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("SELECT secret FROM ledger_accounts -- password=hunter2")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        response = await client.get("/v1/boom")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "internal_error"
    assert "secret" not in response.text and "hunter2" not in response.text


async def test_ach_routing_number_is_checked(tenant: Tenant) -> None:
    account = await funded_account(tenant, 1_000, currency="USD")
    body = {
        "account_id": account["id"],
        "amount": 100,
        "currency": "USD",
        "rail": "ach",
        "creditor": {
            "name": "Acme Inc",
            "country": "US",
            "routing_number": "021000022",
            "account_number": "12345678",
        },
    }
    bad = await tenant.partner.post(
        "/v1/payments", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert bad.status_code == 422
    assert (bad.json()["code"], bad.json()["param"]) == (
        "invalid_routing_number",
        "creditor.routing_number",
    )


def verify_standard_webhook(secret: str, headers: httpx.Headers, body: bytes) -> bool:
    """The receiver's own reading of the Standard Webhooks spec."""
    key = base64.b64decode(secret.split("_", 1)[1])
    signed = b".".join(
        [headers["webhook-id"].encode(), headers["webhook-timestamp"].encode(), body]
    )
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        part.split(",", 1) == ["v1", expected] for part in headers["webhook-signature"].split()
    )


class Receiver:
    """A webhook receiver that fails its first request, then records deliveries."""

    def __init__(self) -> None:
        self.requests: list[tuple[httpx.Headers, bytes]] = []
        self.failures_left = 1

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = httpx.Headers([(k.decode(), v.decode()) for k, v in scope["headers"]])
        status = 200
        if self.failures_left > 0:
            self.failures_left -= 1
            status = 500
        else:
            self.requests.append((headers, body))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    app = Receiver()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    yield app, f"http://127.0.0.1:{port}/hooks"
    server.should_exit = True
    await task


async def test_status_changes_arrive_as_signed_webhooks(
    tenant: Tenant, receiver: tuple[Receiver, str]
) -> None:
    app, url = receiver
    created = await tenant.partner.post("/v1/webhook-endpoints", json={"url": url})
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    account = await funded_account(tenant, 5_000)
    payment = (
        await tenant.partner.post(
            "/v1/payments",
            json=payment_body(account["id"], 100),
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
    ).json()
    await wait_for_status(tenant.partner, payment["id"], TERMINAL)
    expected = ["payment.processing", "payment.submitted", "payment.settled"]

    def this_payments() -> list[tuple[httpx.Headers, bytes]]:
        # the customer's KYC decision is an event of this tenant too: its delivery may arrive
        # before or after the payment's (the receiver refuses the first request once)
        return [
            (headers, body)
            for headers, body in app.requests
            if json.loads(body)["data"].get("payment_id") == payment["id"]
        ]

    def types() -> list[str]:
        return sorted(json.loads(body)["type"] for _, body in this_payments())

    for _ in range(200):
        if types() == sorted(expected):
            break
        await asyncio.sleep(0.1)
    assert types() == sorted(expected)
    for headers, body in app.requests:
        assert verify_standard_webhook(secret, headers, body)
        assert not verify_standard_webhook(secret, headers, body + b" ")
        assert json.loads(body)["id"] == headers["webhook-id"]
    events = (await tenant.partner.get("/v1/events", params={"payment_id": payment["id"]})).json()
    assert [e["type"] for e in events["data"]] == expected[::-1]
    listed = (await tenant.partner.get("/v1/webhook-endpoints")).json()["data"]
    assert [(e["url"], e["enabled"], e["secret"]) for e in listed] == [(url, True, None)]
    disabled = await tenant.partner.delete(f"/v1/webhook-endpoints/{listed[0]['id']}")
    assert disabled.json()["enabled"] is False
    stranger = await tenant.ops.delete("/v1/webhook-endpoints/we_nothere")
    assert stranger.status_code in (403, 404)


async def test_kyc_decisions_arrive_as_signed_webhooks_without_the_reasons(
    tenant: Tenant, receiver: tuple[Receiver, str]
) -> None:
    app, url = receiver
    created = await tenant.partner.post("/v1/webhook-endpoints", json={"url": url})
    secret = created.json()["secret"]
    # a fictional politically exposed person of the bundled PEP sample: review, then approved
    customer = await create_customer(
        tenant.partner, name="Lucinda Pemberwick", date_of_birth="1980-04-02"
    )
    assert customer["kyc"]["status"] == "in_review"
    review = await tenant.ops.post(
        f"/v1/customers/{customer['id']}/review", json={"decision": "approve", "note": "EDD"}
    )
    assert review.status_code == 200, review.text
    expected = ["customer.kyc_in_review", "customer.kyc_approved"]
    for _ in range(200):
        if len(app.requests) >= len(expected):
            break
        await asyncio.sleep(0.1)
    delivered = [json.loads(body) for _, body in app.requests]
    assert sorted(event["type"] for event in delivered) == sorted(expected)
    for (headers, body), event in zip(app.requests, delivered, strict=True):
        assert verify_standard_webhook(secret, headers, body)
        assert event["data"]["customer_id"] == customer["id"]
        assert event["data"]["kyc_status"] == event["type"].removeprefix("customer.kyc_")
        # thin events: why a customer was held (a PEP match) is read from the API
        assert "Pemberwick" not in body.decode() and "PEP" not in body.decode()
    by_type = {event["type"]: event["data"] for event in delivered}
    assert by_type["customer.kyc_approved"]["decided_by"] == "review"
    assert by_type["customer.kyc_in_review"]["decided_by"] == "rules"
