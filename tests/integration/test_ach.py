"""ACH through the real stack: a window's NACHA file, settlement at the cut-off, a return
after settlement; the bank simulator's clock is moved instead of waiting for 10:30 New York."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text

from kernel.db import dispose_engines, get_engine
from ops.devstack import Stack
from tests.integration.helpers import Tenant, balances, funded_account, pay, wait_for_status

ROUTING = "021000021"


def ach_body(account_id: str, amount: int, account_number: str) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "amount": amount,
        "currency": "USD",
        "rail": "ach",
        "creditor": {
            "name": "John Smith",
            "country": "US",
            "routing_number": ROUTING,
            "account_number": account_number,
        },
    }


def fresh_account_number() -> str:
    return str(uuid.uuid4().int)[:12]


async def bank_file(bank: httpx.AsyncClient, file_id: str) -> dict[str, Any]:
    response = await bank.get(f"/v1/ach/files/{file_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def file_of(stack: Stack, payment_id: str) -> tuple[str, str]:
    async with get_engine(stack.settings).connect() as conn:
        row = (
            await conn.execute(
                text("SELECT file_id, trace_number FROM ach_entries WHERE payment_id = :p"),
                {"p": payment_id},
            )
        ).one()
    await dispose_engines()
    return str(row.file_id), str(row.trace_number)


async def test_ach_payment_settles_at_the_cutoff_in_one_file(tenant: Tenant, stack: Stack) -> None:
    account = await funded_account(tenant, 50_000, "USD")
    first = await pay(tenant.partner, ach_body(account["id"], 1_250, fresh_account_number()))
    second = await pay(tenant.partner, ach_body(account["id"], 750, fresh_account_number()))
    for payment in (first, second):
        await wait_for_status(tenant.partner, payment["id"], {"submitted"})
    async with httpx.AsyncClient(base_url=stack.settings.banksim_url, timeout=30) as bank:
        moved = await bank.post("/v1/admin/clock/advance", json={"to": "next_ach_cutoff"})
        assert moved.status_code == 200, moved.text
        for payment in (first, second):
            settled = await wait_for_status(tenant.partner, payment["id"], {"settled", "failed"})
            assert settled["status"] == "settled", settled
        files = {await file_of(stack, payment["id"]) for payment in (first, second)}
        for file_id, trace in files:
            at_bank = await bank_file(bank, file_id)
            matching = [e for e in at_bank["entries"] if e["trace_number"] == trace]
            # the bank holds each payment exactly once, and settled it
            assert [e["status"] for e in matching] == ["settled"]
    after = await balances(tenant.partner, account["id"])
    assert (after["posted"], after["pending"]) == (48_000, 0)


async def test_ach_return_after_settlement_restores_the_balance(
    tenant: Tenant, stack: Stack
) -> None:
    account = await funded_account(tenant, 10_000, "USD")
    creditor_account = fresh_account_number()
    async with httpx.AsyncClient(base_url=stack.settings.banksim_url, timeout=30) as bank:
        rule = await bank.post(
            "/v1/admin/rules",
            json={
                "rail": "ach",
                "account_number": creditor_account,
                "action": "return",
                "code": "R03",
            },
        )
        assert rule.status_code == 201, rule.text
        payment = await pay(tenant.partner, ach_body(account["id"], 4_000, creditor_account))
        await wait_for_status(tenant.partner, payment["id"], {"submitted"})
        await bank.post("/v1/admin/clock/advance", json={"to": "next_ach_cutoff"})
        await wait_for_status(tenant.partner, payment["id"], {"settled"})
        assert (await balances(tenant.partner, account["id"]))["posted"] == 6_000
        # the receiving bank returns the entry an hour (of bank time) later
        await bank.post("/v1/admin/clock/advance", json={"seconds": 2 * 3600})
        returned = await wait_for_status(tenant.partner, payment["id"], {"returned"})
    assert returned["failure"]["code"] == "rail_returned"
    assert returned["failure"]["reason_code"] == "R03"
    assert [h["status"] for h in returned["status_history"]][-3:] == [
        "submitted",
        "settled",
        "returned",
    ]
    after = await balances(tenant.partner, account["id"])
    assert (after["posted"], after["pending"], after["available"]) == (10_000, 0, 10_000)
