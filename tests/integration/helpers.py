"""Helpers for tests through the real API: keys, clients, customers, funded accounts, payments."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from schwifty import IBAN
from sqlalchemy import select

from kernel.api_keys import create_key, ensure_tenant
from kernel.db import dispose_engines, get_engine
from kernel.tables import audit_log, payment_status_history
from ops.devstack import Stack
from workflows.models import TERMINAL_STATUSES

TERMINAL: set[str] = set(TERMINAL_STATUSES)


@dataclass
class Tenant:
    """A tenant with a partner client (write/read) and an ops client (ops/read)."""

    tenant_id: str
    partner: httpx.AsyncClient
    ops: httpx.AsyncClient


async def make_keys(stack: Stack, tenant_id: str, *, platform: bool = True) -> tuple[str, str]:
    """A partner key and an ops key of the tenant. The tests fund accounts and reconcile
    with the ops key, so it is the platform's too unless `platform` is False (a tenant's
    ops alone: test_platform_scope.py)."""
    engine = get_engine(stack.settings)
    async with engine.begin() as conn:
        await ensure_tenant(conn, tenant_id)
        partner = await create_key(
            conn,
            tenant_id=tenant_id,
            principal="partner-app",
            scopes=["payments:write", "payments:read"],
        )
        ops = await create_key(
            conn,
            tenant_id=tenant_id,
            principal="ops-olga",
            scopes=["ops", "payments:read", *(["platform"] if platform else [])],
        )
    await dispose_engines()
    return partner, ops


async def create_customer(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "individual",
        "name": "Ada Lovelace",
        "country": "GB",
        "address": {
            "line1": "12 St James's Square",
            "city": "London",
            "postal_code": "SW1Y 4JH",
            "country": "GB",
        },
        "date_of_birth": "1990-12-10",
    }
    body.update(overrides)
    response = await client.post("/v1/customers", json=body)
    assert response.status_code == 201, response.text
    customer: dict[str, Any] = response.json()
    return customer


async def funded_account(t: Tenant, amount: int, currency: str = "EUR") -> dict[str, Any]:
    customer = await create_customer(t.partner)
    response = await t.partner.post(
        "/v1/accounts", json={"customer_id": customer["id"], "currency": currency}
    )
    assert response.status_code == 201, response.text
    account: dict[str, Any] = response.json()
    if amount:
        deposit = await t.ops.post(
            "/v1/deposits",
            json={"account_id": account["id"], "amount": amount, "currency": currency},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert deposit.status_code == 201, deposit.text
    return account


def payment_body(account_id: str, amount: int = 2_500, **creditor: Any) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "amount": amount,
        "currency": "EUR",
        "rail": "sepa",
        "creditor": {
            "name": "Erika Mustermann",
            # the creditor's country agrees with its IBAN's (a mismatch is a review reason)
            "country": str(creditor.get("iban", "DE"))[:2],
            "iban": "DE89370400440532013000",
            **creditor,
        },
        "remittance_info": "Invoice 42",
    }


async def pay(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(
        "/v1/payments", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    assert response.status_code == 202, response.text
    payment: dict[str, Any] = response.json()
    return payment


async def wait_for_status(
    client: httpx.AsyncClient, payment_id: str, statuses: set[str], timeout: float = 60.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        response = await client.get(f"/v1/payments/{payment_id}")
        assert response.status_code == 200, response.text
        payment: dict[str, Any] = response.json()
        if payment["status"] in statuses:
            return payment
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{payment_id} stuck in {payment['status']}")
        await asyncio.sleep(0.1)


async def balances(client: httpx.AsyncClient, account_id: str) -> dict[str, int]:
    response = await client.get(f"/v1/accounts/{account_id}")
    assert response.status_code == 200, response.text
    result: dict[str, int] = response.json()["balances"]
    return result


def fresh_iban() -> str:
    """A valid IBAN no other test pays, so a bank rule on it touches one test only."""
    account = f"{uuid.uuid4().int % 10**10:010d}"
    return str(IBAN.generate("DE", bank_code="37040044", account_code=account))


async def audited_details(stack: Stack, action: str, subject: str) -> list[dict[str, Any]]:
    """The details of the audit records of `action` about `subject`."""
    async with get_engine(stack.settings).connect() as conn:
        rows = (
            await conn.execute(
                select(audit_log.c.detail).where(
                    audit_log.c.action == action, audit_log.c.subject == subject
                )
            )
        ).all()
    await dispose_engines()
    return [dict(row.detail) for row in rows]


async def decision_and_effect(stack: Stack, payment_id: str, action: str) -> tuple[Any, Any]:
    """The payment's audit record of `action`, and the status-history row it was recorded
    with (the record names its transition's sequence number)."""
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        records = (
            await conn.execute(
                select(audit_log).where(
                    audit_log.c.subject == payment_id, audit_log.c.action == action
                )
            )
        ).all()
        assert len(records) == 1, records
        [record] = records
        change = (
            await conn.execute(
                select(payment_status_history).where(
                    payment_status_history.c.payment_id == payment_id,
                    payment_status_history.c.seq == record.detail["seq"],
                )
            )
        ).one()
    await dispose_engines()
    return record, change
