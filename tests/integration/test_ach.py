"""ACH through the real stack: a window's NACHA file, settlement at the cut-off, a return
after settlement; the bank simulator's clock is moved instead of waiting for 10:30 New York."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import text

from kernel.db import dispose_engines, get_engine
from ops.devstack import Stack
from tests.bank_client import bank_client
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
    async with bank_client(stack.settings) as bank:
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
    async with bank_client(stack.settings) as bank:
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


async def test_trace_numbers_come_round_and_returns_still_match(
    tenant: Tenant, stack: Stack
) -> None:
    """Past ten million entries the trace sequence carries on (trace numbers come round,
    unique per file and effective date), payments keep going out, and a return names the
    right payment even though an older entry has the same trace number."""
    account = await funded_account(tenant, 10_000, "USD")
    returning = fresh_account_number()
    engine = get_engine(stack.settings)
    async with engine.begin() as conn:
        last = (await conn.execute(text("SELECT last_value FROM ach_trace_seq"))).scalar_one()
        past_the_end = (last // 10_000_000 + 1) * 10_000_000  # its trace number ends 0000000
        await conn.execute(text("SELECT setval('ach_trace_seq', :v)"), {"v": past_the_end - 2})
    async with bank_client(stack.settings) as bank:
        rule = await bank.post(
            "/v1/admin/rules",
            json={"rail": "ach", "account_number": returning, "action": "return", "code": "R03"},
        )
        assert rule.status_code == 201, rule.text
        kept = await pay(tenant.partner, ach_body(account["id"], 1_000, fresh_account_number()))
        await wait_for_status(tenant.partner, kept["id"], {"submitted"})
        sent_back = await pay(tenant.partner, ach_body(account["id"], 4_000, returning))
        await wait_for_status(tenant.partner, sent_back["id"], {"submitted"})
        async with engine.begin() as conn:
            assert (
                await conn.execute(text("SELECT last_value FROM ach_trace_seq"))
            ).scalar_one() >= past_the_end
            # an entry of a month ago with the same trace number as the one to be returned
            trace = (
                await conn.execute(
                    text("SELECT trace_number FROM ach_entries WHERE payment_id = :p"),
                    {"p": sent_back["id"]},
                )
            ).scalar_one()
            await _old_entry_with_trace(conn, tenant.tenant_id, account["id"], trace)
        await bank.post("/v1/admin/clock/advance", json={"to": "next_ach_cutoff"})
        for payment in (kept, sent_back):
            settled = await wait_for_status(tenant.partner, payment["id"], {"settled", "failed"})
            assert settled["status"] == "settled", settled
        await bank.post("/v1/admin/clock/advance", json={"seconds": 2 * 3600})
        returned = await wait_for_status(tenant.partner, sent_back["id"], {"returned"})
    await dispose_engines()
    assert returned["failure"]["reason_code"] == "R03"
    after = await balances(tenant.partner, account["id"])
    assert (after["posted"], after["pending"]) == (9_000, 0)


async def _old_entry_with_trace(conn: Any, tenant_id: str, account_id: str, trace: str) -> None:
    """A settled ACH payment of 30 days ago whose entry had trace number `trace`."""
    payment_id = f"pay_old_{uuid.uuid4().hex[:20]}"
    await conn.execute(
        text(
            "INSERT INTO payments (id, tenant_id, account_id, customer_id, amount, currency,"
            " rail, creditor, initiated_by, status, created_at, updated_at)"
            " SELECT :p, :t, id, customer_id, 500, 'USD', 'ach', '{}', 'test', 'settled',"
            " now() - interval '30 days', now() - interval '30 days'"
            " FROM ledger_accounts WHERE id = :a"
        ),
        {"p": payment_id, "t": tenant_id, "a": account_id},
    )
    await conn.execute(
        text(
            "INSERT INTO ach_entries (payment_id, trace_number, window_id, file_id,"
            " effective_date)"
            " VALUES (:p, :trace, 'old', 'old-file', current_date - 30)"
        ),
        {"p": payment_id, "trace": trace},
    )
