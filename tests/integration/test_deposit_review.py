"""Deposits above `PAYMENTS_DEPOSIT_REVIEW_THRESHOLD` wait for a second ops principal
(four-eyes), through the real API and PostgreSQL: nothing is credited until an approval,
which credits once; a rejection credits nothing; every refusal is a problem document."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from kernel.api_keys import create_key
from kernel.db import dispose_engines, get_engine
from kernel.tables import audit_log, events
from ops.devstack import Stack
from tests.integration.helpers import Tenant, balances, funded_account

# PAYMENTS_DEPOSIT_REVIEW_THRESHOLD's default, which the test stack keeps (minor units)
THRESHOLD = 10_000_000


async def _key(stack: Stack, tenant_id: str, principal: str) -> str:
    engine = get_engine(stack.settings)
    async with engine.begin() as conn:
        key = await create_key(
            conn,
            tenant_id=tenant_id,
            principal=principal,
            scopes=["platform", "payments:read"],
        )
    await dispose_engines()
    return key


@pytest.fixture
async def reviewers(tenant: Tenant, stack: Stack) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """A second ops principal, and a second key of the creator's own principal."""
    base = stack.settings.api.url
    oscar = await _key(stack, tenant.tenant_id, "ops-oscar")
    olga_again = await _key(stack, tenant.tenant_id, "ops-olga")
    async with (
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {oscar}"}, timeout=30
        ) as other,
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {olga_again}"}, timeout=30
        ) as same,
    ):
        yield {"other_principal": other, "same_principal_other_key": same}


async def _deposit(t: Tenant, account_id: str, amount: int) -> dict[str, Any]:
    response = await t.ops.post(
        "/v1/deposits",
        json={"account_id": account_id, "amount": amount, "currency": "EUR"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.text
    deposit: dict[str, Any] = response.json()
    return deposit


async def _credits(stack: Stack, account_id: str) -> int:
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        count = (
            await conn.execute(
                text("SELECT count(*) FROM ledger_transfers WHERE credit_account_id = :id"),
                {"id": account_id},
            )
        ).scalar_one()
    await dispose_engines()
    return int(count)


async def _trail(stack: Stack, deposit_id: str) -> tuple[list[str], list[str]]:
    """The deposit's audit actions and event types, oldest first."""
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        actions = (
            await conn.execute(
                select(audit_log.c.action)
                .where(audit_log.c.subject == deposit_id)
                .order_by(audit_log.c.seq)
            )
        ).scalars()
        types = (
            await conn.execute(
                select(events.c.type)
                .where(events.c.data["deposit_id"].astext == deposit_id)
                .order_by(events.c.created_at)
            )
        ).scalars()
        found = (list(actions), list(types))
    await dispose_engines()
    return found


async def test_a_deposit_above_the_threshold_waits_for_a_second_principal_and_credits_once(
    tenant: Tenant, stack: Stack, reviewers: dict[str, httpx.AsyncClient]
) -> None:
    threshold = THRESHOLD
    account = await funded_account(tenant, 0)
    # at the threshold: credited at once; above it: held, nothing credited
    at = await _deposit(tenant, account["id"], threshold)
    above = await _deposit(tenant, account["id"], threshold + 1)
    assert (await balances(tenant.partner, account["id"]))["posted"] == threshold
    assert at.get("status") == "credited" and at.get("review") is None
    assert above.get("status") == "pending_review"
    assert above["created_by"] == "ops-olga"
    path = f"/v1/deposits/{above['id']}/review"
    approve = {"decision": "approve", "note": "matches the bank's credit"}
    # the reviewer finds what waits for a decision
    waiting = await reviewers["other_principal"].get("/v1/deposits?status=pending_review")
    assert [d["id"] for d in waiting.json()["data"]] == [above["id"]]

    # the creator may not decide it, with its own key or another of its principal's keys
    for client in (tenant.ops, reviewers["same_principal_other_key"]):
        refused = await client.post(path, json=approve)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "four_eyes_violation"
    # nor may a partner key (no ops scope), nor another tenant's ops (not found)
    assert (await tenant.partner.post(path, json=approve)).json()["code"] == "insufficient_scope"

    # two approvals racing: one decides, the other finds it decided; one credit
    first, second = await asyncio.gather(
        reviewers["other_principal"].post(path, json=approve),
        reviewers["other_principal"].post(path, json=approve),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409], (
        first.text,
        second.text,
    )
    decided = first if first.status_code == 200 else second
    late = second if decided is first else first
    assert late.json()["code"] == "deposit_not_in_review"
    body = decided.json()
    assert body["status"] == "credited"
    assert body["review"]["decision"] == "approve"
    assert body["review"]["reviewed_by"] == "ops-oscar"
    assert body["review"]["note"] == "matches the bank's credit"
    assert (await balances(tenant.partner, account["id"]))["posted"] == 2 * threshold + 1
    assert await _credits(stack, account["id"]) == 2
    read = await tenant.partner.get(f"/v1/deposits/{above['id']}")
    assert read.status_code == 200 and read.json() == body
    assert (await tenant.ops.get("/v1/deposits?status=pending_review")).json()["data"] == []
    listed = (await tenant.ops.get("/v1/deposits?limit=1")).json()
    assert (listed["data"][0]["id"], listed["has_more"]) == (above["id"], True)
    rest = (await tenant.ops.get(f"/v1/deposits?starting_after={above['id']}")).json()
    assert [d["id"] for d in rest["data"]] == [at["id"]]
    # a decided deposit stays decided
    again = await reviewers["other_principal"].post(path, json={"decision": "reject"})
    assert again.status_code == 409 and again.json()["code"] == "deposit_not_in_review"
    assert await _trail(stack, above["id"]) == (
        ["deposit.pending_review", "deposit.approved"],
        ["deposit.pending_review", "deposit.credited"],
    )


async def test_a_rejected_deposit_credits_nothing(
    tenant: Tenant, stack: Stack, reviewers: dict[str, httpx.AsyncClient]
) -> None:
    account = await funded_account(tenant, 0)
    held = await _deposit(tenant, account["id"], THRESHOLD + 5)
    assert (await balances(tenant.partner, account["id"]))["posted"] == 0
    path = f"/v1/deposits/{held['id']}/review"
    rejected = await reviewers["other_principal"].post(
        path, json={"decision": "reject", "note": "no such credit at the bank"}
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["review"]["decision"] == "reject"
    after = await reviewers["other_principal"].post(path, json={"decision": "approve"})
    assert after.status_code == 409 and after.json()["code"] == "deposit_not_in_review"
    assert (await balances(tenant.partner, account["id"]))["posted"] == 0
    assert await _credits(stack, account["id"]) == 0
    assert await _trail(stack, held["id"]) == (
        ["deposit.pending_review", "deposit.rejected"],
        ["deposit.pending_review", "deposit.rejected"],
    )
    unknown = await reviewers["other_principal"].post(
        "/v1/deposits/dep_0000000000000000000000000/review", json={"decision": "approve"}
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "deposit_not_found"
    malformed = await reviewers["other_principal"].post(
        "/v1/deposits/pay_x/review", json={"decision": "approve"}
    )
    assert malformed.status_code == 422 and malformed.json()["code"] == "validation_error"
    wrong = await reviewers["other_principal"].post(path, json={"decision": "maybe"})
    assert wrong.status_code == 422 and wrong.json()["code"] == "validation_error"
