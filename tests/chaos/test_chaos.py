"""Chaos: payments keep every promise while workers, Temporal, PostgreSQL and the bank fail.

Short in `make test` (CHAOS_PAYMENTS defaults to 40); `make chaos` runs 300. The seed is in
every failure message; CHAOS_SEED replays a run's fault schedule.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from iso20022.camt053 import parse_camt053
from kernel.db import dispose_engines, get_engine
from kernel.temporal_client import connect
from ledger import verify_ledger
from ops.devstack import Stack
from tests.chaos.scenario import (
    SEPA_REJECT_IBAN,
    SEPA_RETURN_IBAN,
    Chaos,
    Plan,
    Sent,
    http_retry,
    send_payments,
)
from tests.integration.helpers import TERMINAL, Tenant, funded_account, make_keys

DEPOSIT = 1_000_000


async def open_accounts(tenant: Tenant) -> list[dict[str, str]]:
    """Three funded EUR accounts and two USD ones, each of its own customer."""
    accounts = []
    for currency in ("EUR", "EUR", "EUR", "USD", "USD"):
        opened = await funded_account(tenant, DEPOSIT, currency)
        accounts.append({"id": opened["id"], "currency": currency})
    return accounts


async def drive_to_the_end(
    stack: Stack, partner: httpx.AsyncClient, ops: httpx.AsyncClient, sent: list[Sent]
) -> dict[str, dict[str, Any]]:
    """Wait for every payment; ops retry the ones that ran out of rail budget, and the
    bank's clock is moved to the ACH cut-off once only ACH payments are left."""
    finals: dict[str, dict[str, Any]] = {}
    deadline = asyncio.get_running_loop().time() + 600
    async with httpx.AsyncClient(base_url=stack.settings.banksim_url, timeout=30) as bank:
        while len(finals) < len(sent):
            assert asyncio.get_running_loop().time() < deadline, "payments never finished"
            open_rails = set()
            for payment in sent:
                if payment.payment_id in finals:
                    continue
                response = await http_retry(
                    lambda pid=payment.payment_id: partner.get(f"/v1/payments/{pid}")  # type: ignore[misc]
                )
                body = response.json()
                awaiting_return = payment.expect == "returned" and body["status"] == "settled"
                if body["status"] in TERMINAL and not awaiting_return:
                    finals[payment.payment_id] = body
                elif body["status"] == "action_required":
                    await http_retry(
                        lambda pid=payment.payment_id: ops.post(f"/v1/payments/{pid}/retry")  # type: ignore[misc]
                    )
                elif payment.rail == "ach" and body["status"] == "settled":
                    finals[payment.payment_id] = body  # settled; waiting out the return window
                else:
                    open_rails.add(payment.rail)
            if open_rails == {"ach"}:
                await http_retry(
                    lambda: bank.post("/v1/admin/clock/advance", json={"to": "next_ach_cutoff"})
                )
            await asyncio.sleep(1.0)
    return finals


async def bank_bookings(stack: Stack) -> Counter[str]:
    """How often the bank booked each SEPA end-to-end id (yesterday to tomorrow, UTC)."""
    counts: Counter[str] = Counter()
    today = datetime.now(UTC).date()
    async with httpx.AsyncClient(base_url=stack.settings.banksim_url, timeout=30) as bank:
        for offset in (-1, 0, 1):
            day = (today + timedelta(days=offset)).isoformat()
            response = await bank.get(f"/v1/statements/{day}", params={"account": "sepa"})
            assert response.status_code == 200, response.text
            statement = parse_camt053(response.content).for_account("sepa")
            counts.update(
                e.end_to_end_id
                for e in statement.entries
                if e.direction == "DBIT" and e.end_to_end_id
            )
    return counts


async def ach_traces_at_bank(stack: Stack, file_ids: set[str]) -> Counter[str]:
    """How often each trace number appears in the files the bank holds."""
    counts: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=stack.settings.banksim_url, timeout=30) as bank:
        for file_id in file_ids:
            response = await bank.get(f"/v1/ach/files/{file_id}")
            assert response.status_code == 200, response.text
            counts.update(e["trace_number"] for e in response.json()["entries"])
    return counts


async def test_payments_survive_chaos(chaos_stack: Stack) -> None:
    stack = chaos_stack
    seed = int(os.environ.get("CHAOS_SEED", random.randrange(1_000_000)))
    size = int(os.environ.get("CHAOS_PAYMENTS", "40"))
    spacing = 0.15
    plan = Plan.draw(seed, size, duration=max(10.0, size * (spacing + 0.1)))
    context = f"seed={seed} payments={size}"
    tenant_id = f"ten_chaos_{seed}"
    partner_key, ops_key = await make_keys(stack, tenant_id)
    base = stack.settings.api_url
    async with (
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {partner_key}"}, timeout=30
        ) as partner,
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {ops_key}"}, timeout=30
        ) as ops,
        httpx.AsyncClient(base_url=stack.settings.banksim_url, timeout=30) as bank,
    ):
        await bank.put("/v1/admin/clock", json={"now": datetime.now(UTC).isoformat()})
        rule = {"creditor_iban": SEPA_REJECT_IBAN, "reject_code": "AC04"}
        assert (await bank.post("/v1/admin/rules", json=rule)).status_code == 201
        returns = {
            "rail": "sepa",
            "creditor_iban": SEPA_RETURN_IBAN,
            "action": "return",
            "code": "AC06",
        }
        assert (await bank.post("/v1/admin/rules", json=returns)).status_code == 201
        accounts = await open_accounts(Tenant(tenant_id, partner, ops))
        chaos = Chaos(stack, plan)
        started = asyncio.get_running_loop().time()
        events = asyncio.create_task(chaos.run_events(started))
        sent = await send_payments(partner, plan, accounts, spacing)
        await events
        context += "\n" + "\n".join(chaos.log)
        finals = await drive_to_the_end(stack, partner, ops, sent)
        posted = {}
        for account in accounts:
            response = await http_retry(lambda a=account: partner.get(f"/v1/accounts/{a['id']}"))  # type: ignore[misc]
            posted[account["id"]] = response.json()["balances"]["posted"]

    # every payment ended where it should: settled, failed or returned with the bank's reason
    for payment in sent:
        final = finals[payment.payment_id]
        assert final["status"] == payment.expect, (context, final)
        if payment.expect in ("failed", "returned"):
            code = "AC04" if payment.expect == "failed" else "AC06"
            assert final["failure"]["reason_code"] == code, (context, final)

    engine = get_engine(stack.settings)
    try:
        report = await verify_ledger(engine)
        assert report.ok, (context, report.problems[:3])
        async with engine.connect() as conn:
            transfers = (
                await conn.execute(
                    text(
                        "SELECT split_part(id, ':', 1) AS payment_id, kind, amount"
                        " FROM ledger_transfers WHERE id LIKE 'pay_%'"
                    )
                )
            ).all()
            ach_files = {
                row.payment_id: (row.file_id, row.trace_number)
                for row in (
                    await conn.execute(
                        text("SELECT payment_id, file_id, trace_number FROM ach_entries")
                    )
                ).all()
            }
    finally:
        await dispose_engines()

    # money moved exactly once: one hold, then one post or one void (and one credit back for
    # a return)
    kinds: dict[str, list[str]] = {}
    for row in transfers:
        kinds.setdefault(row.payment_id, []).append(row.kind)
    by_id = {payment.payment_id: payment for payment in sent}
    expected_kinds = {
        "settled": ["pending", "post_pending"],
        "failed": ["pending", "void_pending"],
        "returned": ["pending", "post_pending", "single"],
    }
    for payment_id, payment in by_id.items():
        assert sorted(kinds.get(payment_id, [])) == sorted(expected_kinds[payment.expect]), (
            context,
            payment_id,
            kinds.get(payment_id),
        )
    settled_out = Counter[str]()
    for payment_id, final in finals.items():
        if final["status"] == "settled":
            settled_out[final["account_id"]] += by_id[payment_id].amount
    for account in accounts:
        assert posted[account["id"]] == DEPOSIT - settled_out[account["id"]], context

    # the bank has each payment once
    booked = await bank_bookings(stack)
    for payment in sent:
        if payment.rail == "sepa" and payment.expect in ("settled", "returned"):
            assert booked[payment.payment_id] == 1, (context, payment.payment_id)
    traces = await ach_traces_at_bank(stack, {f for f, _ in ach_files.values()})
    for payment in sent:
        if payment.rail == "ach":
            assert traces[ach_files[payment.payment_id][1]] == 1, (context, payment.payment_id)

    # no workflow is stuck retrying a failing workflow task
    client = await connect(stack.settings)
    async for execution in client.list_workflows("ExecutionStatus='Running'"):
        described = await client.get_workflow_handle(execution.id).describe()
        pending = described.raw_description.pending_workflow_task
        assert pending.attempt <= 1, (context, execution.id, pending)
    print(f"\nchaos OK: {context}")
    statuses = Counter(final["status"] for final in finals.values())
    print(f"final statuses: {dict(statuses)}")
