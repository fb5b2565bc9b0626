"""Platform versus tenant (#16 item 3): a tenant's `ops` key acts on its own tenant only;
deposits into any account, reconciliation and other tenants' payloads need `platform`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from kernel.codec import TENANT
from kernel.temporal_client import connect
from ops.devstack import Stack
from tests.integration.helpers import (
    TERMINAL,
    Tenant,
    balances,
    create_customer,
    funded_account,
    make_keys,
    pay,
    payment_body,
    wait_for_status,
)

JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def other(stack: Stack) -> AsyncIterator[Tenant]:
    """A second tenant whose ops key is that tenant's only (no `platform`)."""
    tenant_id = f"ten_{uuid.uuid4().hex[:12]}"
    partner_key, ops_key = await make_keys(stack, tenant_id, platform=False)
    base = stack.settings.api.url
    async with (
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {partner_key}"}, timeout=30
        ) as partner,
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {ops_key}"}, timeout=30
        ) as ops,
    ):
        yield Tenant(tenant_id, partner, ops)


def refused_for_scope(answer: httpx.Response) -> None:
    assert answer.status_code == 403, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "insufficient_scope"


async def test_a_tenants_ops_key_may_not_do_platform_work_and_the_platform_may(
    tenant: Tenant, other: Tenant
) -> None:
    customer = await create_customer(other.partner)
    created = await other.partner.post(
        "/v1/accounts", json={"customer_id": customer["id"], "currency": "EUR"}
    )
    account = created.json()
    deposit = {"account_id": account["id"], "amount": 7_000, "currency": "EUR"}
    # a tenant's ops may not mint money into its own accounts, nor see the bank reconciled
    refused_for_scope(
        await other.ops.post(
            "/v1/deposits", json=deposit, headers={"Idempotency-Key": str(uuid.uuid4())}
        )
    )
    refused_for_scope(await other.ops.get("/v1/reconciliations"))
    refused_for_scope(
        await other.ops.post("/v1/reconciliations", json={"statement_date": "2026-01-14"})
    )
    assert (await balances(other.partner, account["id"]))["posted"] == 0

    # the platform credits any tenant's account; the deposit is that tenant's
    credited = await tenant.ops.post(
        "/v1/deposits", json=deposit, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert credited.status_code == 201, credited.text
    assert (await balances(other.partner, account["id"]))["posted"] == 7_000
    seen = await other.partner.get(f"/v1/deposits/{credited.json()['id']}")
    assert seen.status_code == 200, seen.text
    assert (await tenant.ops.get("/v1/reconciliations")).status_code == 200


async def test_the_codec_server_decodes_a_tenants_payloads_for_its_ops_only(
    tenant: Tenant, other: Tenant, stack: Stack
) -> None:
    creditor = f"Zebulon Quixote {uuid.uuid4().hex[:6]}"
    account = await funded_account(tenant, 5_000)
    payment = await pay(tenant.partner, payment_body(account["id"], 100, name=creditor))
    await wait_for_status(tenant.partner, payment["id"], TERMINAL)
    client = await connect(stack.settings)
    history = await client.get_workflow_handle(payment["id"]).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes.input
    assert started.payloads[0].metadata[TENANT] == tenant.tenant_id.encode()
    request = json_format.MessageToJson(Payloads(payloads=started.payloads))

    # the payment's own tenant's ops, without `platform`
    _, own_ops_key = await make_keys(stack, tenant.tenant_id, platform=False)
    async with httpx.AsyncClient(
        base_url=stack.settings.api.url, headers={"Authorization": f"Bearer {own_ops_key}"}
    ) as own_ops:
        own = await own_ops.post("/codec/decode", content=request, headers=JSON)
    assert own.status_code == 200, own.text
    decoded = json_format.Parse(own.text, Payloads()).payloads[0]
    assert creditor.encode() in decoded.data
    # another tenant's ops: refused, and nothing of the payload in the answer
    foreign = await other.ops.post("/codec/decode", content=request, headers=JSON)
    assert foreign.status_code == 403, foreign.text
    assert foreign.headers["content-type"] == "application/problem+json"
    assert foreign.json()["code"] == "payload_of_another_tenant"
    # the platform: any tenant's
    platform = await tenant.ops.post("/codec/decode", content=request, headers=JSON)
    assert platform.status_code == 200, platform.text
