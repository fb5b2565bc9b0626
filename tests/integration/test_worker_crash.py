"""SIGKILL the worker with payments in flight: every payment still finishes, money moves once,
and the bank books each payment once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import select

from iso20022.camt053 import parse_camt053
from kernel.db import dispose_engines, get_engine
from ledger.tables import ledger_transfers
from ops.devstack import Stack
from tests.bank_client import bank_client
from tests.integration.helpers import (
    TERMINAL,
    Tenant,
    balances,
    funded_account,
    pay,
    payment_body,
    wait_for_status,
)

PAYMENTS = 24
AMOUNT = 125


async def test_worker_killed_twice_mid_flight_loses_nothing(tenant: Tenant, stack: Stack) -> None:
    account = await funded_account(tenant, 100_000)
    body = payment_body(account["id"], AMOUNT)
    try:
        first_half = [await pay(tenant.partner, body) for _ in range(PAYMENTS // 2)]
        stack.kill("worker")  # crash while those are between steps
        second_half = [await pay(tenant.partner, body) for _ in range(PAYMENTS // 2)]
        stack.start_worker()
        await asyncio.sleep(1.5)
        stack.kill("worker")  # and again, mid-recovery
        await asyncio.sleep(0.5)
    finally:
        if "worker" not in stack.processes:
            stack.start_worker()
    ids = [p["id"] for p in first_half + second_half]
    finals = [await wait_for_status(tenant.partner, pid, TERMINAL, timeout=120) for pid in ids]
    assert [p["status"] for p in finals] == ["settled"] * PAYMENTS

    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    ledger_transfers.c.id, ledger_transfers.c.kind, ledger_transfers.c.amount
                ).where(ledger_transfers.c.debit_account_id == account["id"])
            )
        ).all()
    await dispose_engines()
    by_payment: dict[str, list[str]] = {}
    for transfer_id, kind, amount in rows:
        assert amount == AMOUNT
        by_payment.setdefault(transfer_id.split(":")[0], []).append(kind)
    assert set(by_payment) == set(ids)
    for payment_id, kinds in by_payment.items():
        assert sorted(kinds) == ["pending", "post_pending"], payment_id  # one hold, one post
    assert await balances(tenant.partner, account["id"]) == {
        "posted": 100_000 - PAYMENTS * AMOUNT,
        "pending": 0,
        "available": 100_000 - PAYMENTS * AMOUNT,
    }


async def test_worker_killed_during_submission_bank_books_each_payment_once(
    tenant: Tenant, stack: Stack
) -> None:
    account = await funded_account(tenant, 10_000)
    async with bank_client(stack.settings) as bank:
        await bank.put("/v1/admin/clock", json={"now": datetime.now(UTC).isoformat()})
        # the bank stores each submission but does not answer: the worker dies waiting
        faults = {"seed": 7, "timeout_rate": 1.0, "timeout_seconds": 4.0}
        await bank.put("/v1/admin/faults", json=faults)
        try:
            paid = [await pay(tenant.partner, payment_body(account["id"], 300)) for _ in range(3)]
            await asyncio.sleep(1.5)
            stack.kill("worker")
        finally:
            await bank.put("/v1/admin/faults", json={})
            if "worker" not in stack.processes:
                stack.start_worker()
        ids = [payment["id"] for payment in paid]
        finals = [await wait_for_status(tenant.partner, pid, TERMINAL, timeout=120) for pid in ids]
        assert [p["status"] for p in finals] == ["settled"] * 3
        today = datetime.now(UTC).date().isoformat()
        response = await bank.get(f"/v1/statements/{today}", params={"account": "sepa"})
        assert response.status_code == 200
    booked = [e.end_to_end_id for e in parse_camt053(response.content).for_account("sepa").entries]
    # resubmitted after the crash, recognised by message id: each payment is booked once
    assert [booked.count(pid) for pid in ids] == [1, 1, 1]
    assert (await balances(tenant.partner, account["id"]))["posted"] == 10_000 - 900
