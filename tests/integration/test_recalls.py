"""Recalls through the real stack (issue #18 item 1): a SEPA recall the bank accepts
(camt.056 → camt.029 → pacs.004: the payment ends `returned`, the debtor's balance is
restored, the ledger verifies and reconciliation matches both legs), one it rejects (still
`settled`, with the bank's reason), an ACH reversal, and recalls refused with nothing
created; a `recalled` signal sent straight through Temporal is refused and audited, the real
one believed because the database records it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select, text
from temporalio.service import RPCError

from kernel.db import dispose_engines, get_engine
from kernel.tables import events
from kernel.temporal_client import connect
from ledger import verify_ledger
from ops.devstack import Stack
from services.events import DeliveryStarter
from services.recalls import confirm_recall, record_recall_funds_overdue
from tests.bank_client import bank_client
from tests.integration.helpers import (
    Tenant,
    audited_details,
    balances,
    fresh_iban,
    funded_account,
    pay,
    payment_body,
    wait_for_status,
)
from tests.integration.test_ach import ach_body, fresh_account_number
from workflows.models import RecallClaim, RecallFundsOverdue, RecallOutcome
from workflows.recall import recall_workflow_id
from workflows.search_attributes import PAYMENT_STATUS


async def recall(
    client: httpx.AsyncClient, payment_id: str, reason: str = "DUPL", **extra: Any
) -> httpx.Response:
    return await client.post(f"/v1/payments/{payment_id}/recall", json={"reason": reason, **extra})


async def wait_for_recall(
    client: httpx.AsyncClient, payment_id: str, statuses: set[str]
) -> dict[str, Any]:
    """The payment once its recall reached one of `statuses` (polled like wait_for_status)."""
    deadline = asyncio.get_running_loop().time() + 60.0
    while True:
        payment: dict[str, Any] = (await client.get(f"/v1/payments/{payment_id}")).json()
        if (payment.get("recall") or {}).get("status") in statuses:
            return payment
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{payment_id}: recall stuck in {payment.get('recall')}")
        await asyncio.sleep(0.1)


async def event_types(stack: Stack, payment_id: str) -> list[str]:
    async with get_engine(stack.settings).connect() as conn:
        rows = (
            await conn.execute(
                select(events.c.type)
                .where(events.c.payment_id == payment_id)
                .order_by(events.c.created_at, events.c.id)
            )
        ).all()
    await dispose_engines()
    return [row.type for row in rows]


async def test_sepa_recall_accepted_returns_the_funds(tenant: Tenant, stack: Stack) -> None:
    async with bank_client(stack.settings) as bank:
        # book today's payments on today's date (other tests move the bank's clock)
        clock = await bank.put("/v1/admin/clock", json={"now": datetime.now(UTC).isoformat()})
        assert clock.status_code == 200, clock.text
        account = await funded_account(tenant, 10_000)
        payment = await pay(tenant.partner, payment_body(account["id"], 4_000, iban=fresh_iban()))
        await wait_for_status(tenant.partner, payment["id"], {"settled"})
        assert (await balances(tenant.partner, account["id"]))["posted"] == 6_000

        response = await recall(tenant.partner, payment["id"], "DUPL", note="sent twice")
        assert response.status_code == 202, response.text
        requested = response.json()["recall"]
        assert (requested["status"], requested["reason"]) == ("requested", "DUPL")
        returned = await wait_for_status(tenant.partner, payment["id"], {"returned"})
    assert returned["recall"]["status"] == "accepted"
    assert returned["recall"]["answered_at"] is not None
    assert returned["failure"]["code"] == "recalled"
    assert returned["failure"]["reason_code"] == "DUPL"
    after = await balances(tenant.partner, account["id"])
    assert (after["posted"], after["pending"], after["available"]) == (10_000, 0, 10_000)
    engine = get_engine(stack.settings)
    assert (await verify_ledger(engine)).ok
    await dispose_engines()
    types = await event_types(stack, payment["id"])
    assert "payment.recall_requested" in types
    assert types[-1] == "payment.returned"
    # the bank booked the payment out and the recalled funds back in: both legs match
    today = datetime.now(UTC).date().isoformat()
    run = await tenant.ops.post(
        "/v1/reconciliations", json={"statement_date": today, "rails": ["sepa"]}
    )
    assert run.status_code == 200, run.text
    (result,) = run.json()["data"]
    assert [d for d in result["discrepancies"] if d["reference"] == payment["id"]] == []
    # the payment's workflow, still in its return window (60 s here) when the recall was
    # accepted, ends `returned` too: its result and the Web UI's PaymentStatus agree
    handle = (await connect(stack.settings)).get_workflow_handle(payment["id"])
    view = await handle.result()
    described = await handle.describe()
    assert described.close_time is not None
    if described.close_time > datetime.fromisoformat(returned["recall"]["answered_at"]):
        assert view["status"] == "returned", view
        assert described.typed_search_attributes.get(PAYMENT_STATUS) == "returned"


async def test_late_funds_of_an_accepted_recall_are_marked_overdue_once(
    tenant: Tenant, stack: Stack
) -> None:
    iban = fresh_iban()
    async with bank_client(stack.settings) as bank:
        # the bank answers (accepting) only in a day of its time: the recall stays requested
        rule = {"rail": "sepa", "creditor_iban": iban, "action": "recall", "code": "ACCP"}
        created = await bank.post("/v1/admin/rules", json={**rule, "detail": "86400"})
        assert created.status_code == 201, created.text
        account = await funded_account(tenant, 10_000)
        payment = await pay(tenant.partner, payment_body(account["id"], 2_000, iban=iban))
        await wait_for_status(tenant.partner, payment["id"], {"settled"})
        assert (await recall(tenant.partner, payment["id"], "TECH")).status_code == 202
    # what the workflow's step does past `sepa.recall_funds_deadline_seconds`, twice (retried)
    since = datetime.now(UTC).isoformat()
    temporal = await connect(stack.settings)
    deliveries = DeliveryStarter(temporal, stack.settings)
    engine = get_engine(stack.settings)
    for _ in range(2):
        await record_recall_funds_overdue(
            engine, deliveries, RecallFundsOverdue(payment["id"], since)
        )
    await dispose_engines()
    shown = (await tenant.partner.get(f"/v1/payments/{payment['id']}")).json()
    assert shown["status"] == "settled"
    assert shown["recall"]["status"] == "requested"
    assert datetime.fromisoformat(shown["recall"]["funds_overdue_at"]) == datetime.fromisoformat(
        since
    )
    types = await event_types(stack, payment["id"])
    assert types.count("payment.recall_funds_overdue") == 1


async def test_sepa_recall_rejected_leaves_the_payment_settled(
    tenant: Tenant, stack: Stack
) -> None:
    iban = fresh_iban()
    async with bank_client(stack.settings) as bank:
        rule = await bank.post(
            "/v1/admin/rules",
            json={"rail": "sepa", "creditor_iban": iban, "action": "recall", "code": "LEGL"},
        )
        assert rule.status_code == 201, rule.text
        account = await funded_account(tenant, 10_000)
        payment = await pay(tenant.partner, payment_body(account["id"], 3_000, iban=iban))
        await wait_for_status(tenant.partner, payment["id"], {"settled"})
        response = await recall(tenant.partner, payment["id"], "CUST")
        assert response.status_code == 202, response.text
        rejected = await wait_for_recall(tenant.partner, payment["id"], {"rejected"})
    assert rejected["status"] == "settled"
    assert rejected["recall"]["answer_reason"] == "LEGL"
    assert rejected["recall"]["reason"] == "CUST"
    assert (await balances(tenant.partner, account["id"]))["posted"] == 7_000
    assert (await event_types(stack, payment["id"]))[-1] == "payment.recall_rejected"


async def reversal_entry(stack: Stack, payment_id: str) -> Any:
    """The reversal's ACH entry (file, trace number), once the recall workflow made it."""
    return await ach_entry(stack, recall_workflow_id(payment_id))


async def ach_entry(stack: Stack, entry_id: str) -> Any:
    """The ACH entry (file, trace number) of a payment or reversal, once it exists."""
    while True:
        async with get_engine(stack.settings).connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT file_id, trace_number FROM ach_entries WHERE payment_id = :p"),
                    {"p": entry_id},
                )
            ).first()
        await dispose_engines()
        if row is not None:
            return row
        await asyncio.sleep(0.2)


async def test_ach_reversal_accepted_returns_the_funds(tenant: Tenant, stack: Stack) -> None:
    async with bank_client(stack.settings) as bank:
        # the bank's days run ahead of ours (as after a notice that arrives past midnight):
        # reconciliation must book both entries on the bank's settlement dates, not on the
        # days the ledger posted them
        await bank.post("/v1/admin/clock/advance", json={"seconds": 3 * 86_400})
        account = await funded_account(tenant, 10_000, "USD")
        payment = await pay(tenant.partner, ach_body(account["id"], 2_500, fresh_account_number()))
        await wait_for_status(tenant.partner, payment["id"], {"submitted"})
        await bank.post("/v1/admin/clock/advance", json={"to": "next_ach_cutoff"})
        await wait_for_status(tenant.partner, payment["id"], {"settled"})
        original = await ach_entry(stack, payment["id"])
        response = await recall(tenant.partner, payment["id"], "TECH")
        assert response.status_code == 202, response.text
        # the reversal goes out in a later window's file, settled at the next cut-off
        row = await reversal_entry(stack, payment["id"])
        await asyncio.sleep(3.0)  # the window's file goes out (ach.window_seconds is 2)
        await bank.post("/v1/admin/clock/advance", json={"to": "next_ach_cutoff"})
        returned = await wait_for_status(tenant.partner, payment["id"], {"returned"})
        at_bank = (await bank.get(f"/v1/ach/files/{row.file_id}")).json()
        paid_day = (await bank.get(f"/v1/ach/files/{original.file_id}")).json()["settlement_date"]
    assert returned["recall"]["status"] == "accepted"
    assert (await balances(tenant.partner, account["id"]))["posted"] == 10_000
    reversal = [e for e in at_bank["entries"] if e["trace_number"] == row.trace_number]
    assert [(e["amount"], e["status"]) for e in reversal] == [(2_500, "settled")]
    # the bank booked the reversal in under its own trace number, the ledger the return of
    # the payment: reconciliation pairs them, each on the day the bank settled it
    ours = datetime.now(ZoneInfo("America/New_York")).date().isoformat()
    for day, entry in ((at_bank["settlement_date"], row), (paid_day, original)):
        assert day > ours  # the case under test: not the day our ledger posted it
        run = await tenant.ops.post(
            "/v1/reconciliations", json={"statement_date": day, "rails": ["ach"]}
        )
        assert run.status_code == 200, run.text
        (result,) = run.json()["data"]
        gaps = [d for d in result["discrepancies"] if d["reference"] == entry.trace_number]
        assert gaps == [], result
        assert result["matched"] >= 1
    # nor is either booking left over on our own day
    run = await tenant.ops.post(
        "/v1/reconciliations", json={"statement_date": ours, "rails": ["ach"]}
    )
    (result,) = run.json()["data"]
    references = {d["reference"] for d in result["discrepancies"]}
    assert not references & {row.trace_number, original.trace_number}, result


async def test_bad_recalls_are_refused_and_create_nothing(tenant: Tenant, stack: Stack) -> None:
    account = await funded_account(tenant, 10_000)
    failing_iban = fresh_iban()
    async with bank_client(stack.settings) as bank:
        rule = await bank.post(
            "/v1/admin/rules", json={"creditor_iban": failing_iban, "reject_code": "AC04"}
        )
        assert rule.status_code == 201, rule.text
        failed = await pay(tenant.partner, payment_body(account["id"], 1_000, iban=failing_iban))
        await wait_for_status(tenant.partner, failed["id"], {"failed"})
    unsettled = await recall(tenant.partner, failed["id"])
    assert (unsettled.status_code, unsettled.json()["code"]) == (409, "payment_not_recallable")

    settled = await pay(tenant.partner, payment_body(account["id"], 1_000, iban=fresh_iban()))
    await wait_for_status(tenant.partner, settled["id"], {"settled"})
    bad_reason = await recall(tenant.partner, settled["id"], "AM09")
    assert bad_reason.status_code == 422, bad_reason.text
    unknown = await recall(tenant.partner, f"pay_{uuid.uuid4().hex}")
    assert unknown.status_code == 404
    temporal = await connect(stack.settings)
    for refused in (failed, settled):
        shown = (await tenant.partner.get(f"/v1/payments/{refused['id']}")).json()
        assert shown["recall"] is None
        handle = temporal.get_workflow_handle(recall_workflow_id(refused["id"]))
        try:
            await handle.describe()
        except RPCError:
            pass
        else:
            raise AssertionError(f"a recall workflow was started for {refused['id']}")
    assert "payment.recall_requested" not in await event_types(stack, settled["id"])

    first = await recall(tenant.partner, settled["id"], "TECH")
    assert first.status_code == 202, first.text
    again = await recall(tenant.partner, settled["id"], "TECH")
    assert (again.status_code, again.json()["code"]) == (409, "payment_already_recalled")

    usd = await funded_account(tenant, 10_000, "USD")
    ach = await pay(tenant.partner, ach_body(usd["id"], 500, fresh_account_number()))
    await wait_for_status(tenant.partner, ach["id"], {"submitted"})
    async with bank_client(stack.settings) as bank:
        await bank.post("/v1/admin/clock/advance", json={"to": "next_ach_cutoff"})
    await wait_for_status(tenant.partner, ach["id"], {"settled"})
    fraud = await recall(tenant.partner, ach["id"], "FRAD")
    assert (fraud.status_code, fraud.json()["code"]) == (409, "recall_not_allowed")
    assert (await tenant.partner.get(f"/v1/payments/{ach['id']}")).json()["recall"] is None


async def test_ach_reversal_returned_rejects_the_recall(tenant: Tenant, stack: Stack) -> None:
    account = await funded_account(tenant, 10_000, "USD")
    receiver = fresh_account_number()
    async with bank_client(stack.settings) as bank:
        rule = await bank.post(
            "/v1/admin/rules",
            json={"rail": "ach", "account_number": receiver, "action": "recall", "code": "R10"},
        )
        assert rule.status_code == 201, rule.text
        payment = await pay(tenant.partner, ach_body(account["id"], 1_500, receiver))
        await wait_for_status(tenant.partner, payment["id"], {"submitted"})
        await bank.post("/v1/admin/clock/advance", json={"to": "next_ach_cutoff"})
        await wait_for_status(tenant.partner, payment["id"], {"settled"})
        response = await recall(tenant.partner, payment["id"], "DUPL")
        assert response.status_code == 202, response.text
        row = await reversal_entry(stack, payment["id"])
        await asyncio.sleep(3.0)  # the window's file goes out (ach.window_seconds is 2)
        await bank.post("/v1/admin/clock/advance", json={"to": "next_ach_cutoff"})
        # the receiving bank returns the reversal an hour (of bank time) after settling it,
        # well inside the reversal's window (ach.reversal_return_window_seconds, 15 s)
        await bank.post("/v1/admin/clock/advance", json={"seconds": 2 * 3600})
        rejected = await wait_for_recall(tenant.partner, payment["id"], {"rejected"})
        day = (await bank.get(f"/v1/ach/files/{row.file_id}")).json()["settlement_date"]
    assert rejected["status"] == "settled"
    assert rejected["recall"]["answer_reason"] == "R10"
    assert (await balances(tenant.partner, account["id"]))["posted"] == 8_500
    # in and back out at the bank, nothing in the ledger: no discrepancy
    run = await tenant.ops.post(
        "/v1/reconciliations", json={"statement_date": day, "rails": ["ach"]}
    )
    assert run.status_code == 200, run.text
    (result,) = run.json()["data"]
    assert [d for d in result["discrepancies"] if d["reference"] == row.trace_number] == []


async def refusals(stack: Stack, payment_id: str) -> list[dict[str, Any]]:
    """The details of the `recall.signal_refused` audit records of the payment."""
    return await audited_details(stack, "recall.signal_refused", payment_id)


async def test_a_recalled_signal_straight_through_temporal_is_refused_the_real_one_believed(
    tenant: Tenant, stack: Stack
) -> None:
    async with bank_client(stack.settings) as bank:
        clock = await bank.put("/v1/admin/clock", json={"now": datetime.now(UTC).isoformat()})
        assert clock.status_code == 200, clock.text
    account = await funded_account(tenant, 10_000)
    payment = await pay(tenant.partner, payment_body(account["id"], 4_000, iban=fresh_iban()))
    await wait_for_status(tenant.partner, payment["id"], {"settled"})
    # someone with Temporal access (past mTLS and the payload keys) claims a recall
    temporal = await connect(stack.settings)
    handle = temporal.get_workflow_handle(payment["id"])
    forged = RecallOutcome(payment["id"], "accepted", "FRAD", datetime.now(UTC).isoformat())
    await handle.signal("recalled", forged)
    deadline = asyncio.get_running_loop().time() + 30.0
    while not (found := await refusals(stack, payment["id"])):
        assert asyncio.get_running_loop().time() < deadline, "no refusal audited"
        await asyncio.sleep(0.2)
    [refused] = found
    assert (refused["refusal"], refused["claimed_reason"]) == ("no_recall", "FRAD")
    # the payment keeps waiting out its return window: nothing moved
    assert (await tenant.partner.get(f"/v1/payments/{payment['id']}")).json()["status"] == (
        "settled"
    )
    assert (await balances(tenant.partner, account["id"]))["posted"] == 6_000
    engine = get_engine(stack.settings)
    claim = RecallClaim(payment["id"], tenant.tenant_id, forged)
    # the check as the activity runs it, against this database: another tenant's payment is
    # no recall of this one
    other = await confirm_recall(
        engine, RecallClaim(payment["id"], "ten_other", forged), idempotency_key=uuid.uuid4().hex
    )
    assert (other.confirmed, other.refusal) == (False, "other_tenant")

    response = await recall(tenant.partner, payment["id"], "DUPL")
    assert response.status_code == 202, response.text
    returned = await wait_for_status(tenant.partner, payment["id"], {"returned"})
    confirmed = await confirm_recall(engine, claim, idempotency_key=uuid.uuid4().hex)
    await dispose_engines()
    assert confirmed.confirmed, confirmed
    # the database's reason and time, not the forged signal's
    assert confirmed.reason == "DUPL"
    answered_at = datetime.fromisoformat(returned["recall"]["answered_at"])
    assert datetime.fromisoformat(confirmed.answered_at) == answered_at
    view = await handle.result()
    described = await handle.describe()
    assert described.close_time is not None
    if described.close_time > answered_at:
        # still in its window when the recall was accepted: the real signal was believed
        assert view["status"] == "returned", view
        assert view["failure"]["reason_code"] == "DUPL"
        assert described.typed_search_attributes.get(PAYMENT_STATUS) == "returned"
