"""Chaos: payments keep every promise while workers, Temporal, PostgreSQL, the API and the
bank fail, the bank's answers get lost, and cancels and retries race the submissions.

Short in `make test` (CHAOS_PAYMENTS defaults to 40); `make chaos` runs 300. The seed is in
every failure message; CHAOS_SEED replays a run's fault schedule. Each invariant is checked
from the bank's books (`GET /v1/admin/bookings`, the camt.053 statements) as well as ours
(API, ledger), and all of them are reported before the test fails on any.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from datetime import UTC, date, datetime
from typing import Any

import httpx
from sqlalchemy import text
from temporalio.service import RPCError

from iso20022.camt053 import parse_camt053
from kernel.db import dispose_engines, get_engine
from kernel.temporal_client import connect
from ledger import verify_ledger
from ops.devstack import Stack, free_port
from tests.bank_client import bank_client
from tests.chaos.scenario import (
    CLIENT_RETRIES,
    RECALL_ACCEPT,
    SEPA_REJECT_IBAN,
    SEPA_RETURN_IBAN,
    Chaos,
    Plan,
    Sent,
    action_reason,
    http_retry,
    send_payments,
)
from tests.integration.helpers import TERMINAL, Tenant, funded_account, make_keys

DEPOSIT = 1_000_000
# how long ops keep retrying what is left in action_required once the faults are over
# (within pytest-timeout's 10 minutes, with the 300-payment run's faults before it, so the
# report still prints)
END_SECONDS = float(os.environ.get("CHAOS_END_SECONDS", "240"))
# the bank's clock moves to the next ACH cut-off at most this often while files wait
ACH_CUTOFF_EVERY = 5.0
# the ledger transfers a payment may have, by its final status (a cancel before the hold
# leaves none; after it, the hold is voided)
LEDGER_KINDS = {
    "settled": [["pending", "post_pending"]],
    "returned": [["pending", "post_pending", "single"]],
    "failed": [["pending", "void_pending"]],
    "canceled": [[], ["pending", "void_pending"]],
}
BOOKED_STATUSES = {"settled", "returned"}
RECALL_ANSWERED = {"accepted", "rejected"}


async def open_accounts(tenant: Tenant) -> list[dict[str, str]]:
    """Three funded EUR accounts and two USD ones, each of its own customer."""
    accounts = []
    for currency in ("EUR", "EUR", "EUR", "USD", "USD"):
        opened = await funded_account(tenant, DEPOSIT, currency)
        accounts.append({"id": opened["id"], "currency": currency})
    return accounts


async def drive_to_the_end(
    chaos: Chaos, partner: httpx.AsyncClient, ops: httpx.AsyncClient, sent: list[Sent]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """What ops do once the faults are over (the runbook): retry every payment left in
    action_required until every payment is terminal or END_SECONDS pass, while the bank's
    clock moves on to the ACH cut-off for the files that wait for it. Returns the final
    payments and those still open at the deadline."""
    finals: dict[str, dict[str, Any]] = {}
    open_: dict[str, dict[str, Any]] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + END_SECONDS
    last_cutoff = 0.0
    async with bank_client(chaos.stack.settings) as bank:
        while len(finals) < len(sent) and loop.time() < deadline:
            ach_waiting = False
            for payment in sent:
                if payment.payment_id in finals:
                    continue
                response = await http_retry(
                    lambda pid=payment.payment_id: partner.get(f"/v1/payments/{pid}")  # type: ignore[misc]
                )
                body = response.json()
                open_[payment.payment_id] = body
                awaiting_return = payment.expect == "returned" and body["status"] == "settled"
                # a recalled payment waits for the recall to be sent, then for the answer
                awaiting_recall = (
                    bool(payment.recall_reason)
                    and body["status"] == "settled"
                    and (body.get("recall") or {}).get("status") not in RECALL_ANSWERED
                )
                if body["status"] in TERMINAL and not (awaiting_return or awaiting_recall):
                    finals[payment.payment_id] = body
                    del open_[payment.payment_id]
                elif payment.rail == "ach" and body["status"] == "settled":
                    # settled; waiting out the return window
                    finals[payment.payment_id] = body
                    del open_[payment.payment_id]
                elif body["status"] == "action_required":
                    chaos.tally.reasons.setdefault(payment.payment_id, set()).add(
                        action_reason(body)
                    )
                    await chaos.retry(ops, payment)
                elif payment.rail == "ach" and body["status"] == "submitted":
                    ach_waiting = True
            if ach_waiting and loop.time() - last_cutoff > ACH_CUTOFF_EVERY:
                last_cutoff = loop.time()
                await http_retry(
                    lambda: bank.post("/v1/admin/clock/advance", json={"to": "next_ach_cutoff"})
                )
            await asyncio.sleep(1.0)
    return finals, open_


def payment_of(booking: dict[str, Any], ids: set[str], by_suffix: dict[str, str]) -> str | None:
    """Which of our payments a bank booking is: SEPA names it by end-to-end id, ACH by the
    entry's individual id (the payment id's last 15 characters)."""
    reference = booking.get("end_to_end_id")
    if reference is None:
        return None
    if reference in ids:
        return str(reference)
    return by_suffix.get(reference)


async def bank_books(stack: Stack) -> tuple[list[dict[str, Any]], list[Any]]:
    """Every booking the bank made, and the camt.053 entries of each day it booked on
    (statements as the bank issues them, one per rail account)."""
    async with bank_client(stack.settings) as bank:
        response = await bank.get("/v1/admin/bookings", params={"direction": "all"})
        assert response.status_code == 200, response.text
        bookings: list[dict[str, Any]] = response.json()["data"]
        days: set[date] = {date.fromisoformat(b["booking_date"]) for b in bookings}
        entries: list[Any] = []
        for day in sorted(days):
            for rail in ("sepa", "ach"):
                statement = await bank.get(f"/v1/statements/{day}", params={"account": rail})
                assert statement.status_code == 200, statement.text
                entries.extend(parse_camt053(statement.content).for_account(rail).entries)
    return bookings, entries


async def recall_discrepancies(
    stack: Stack, ops_key: str, bookings: list[dict[str, Any]], recalled: set[str]
) -> list[Any]:
    """Reconciliation (SEPA) of every day the bank booked a leg of a recalled payment: what
    it reports about those payments that the ledger does not explain (both legs must match).

    The run moves the bank's clock to ACH cut-offs, so the bank may book a leg on a later
    date than the ledger: a leg missing from one day's statement and found, same amount, on
    another day's is that shift, not a discrepancy."""
    days = {b["booking_date"] for b in bookings if b.get("end_to_end_id") in recalled}
    # and every day our ledger booked one of their legs: the bank may have booked it on none
    # of those (its clock ahead of ours), and the shift is only seen from both days
    async with get_engine(stack.settings).connect() as conn:
        ledger_days = await conn.execute(
            text(
                "SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date FROM ledger_transfers"
                " WHERE id = ANY(:ids)"
            ),
            {"ids": [f"{pid}:{leg}" for pid in recalled for leg in ("post", "return")]},
        )
        days |= {day.isoformat() for day in ledger_days.scalars()}
    await dispose_engines()
    found: list[tuple[str, str, str, int | None]] = []
    async with httpx.AsyncClient(
        base_url=stack.settings.api.url,
        headers={"Authorization": f"Bearer {ops_key}"},
        timeout=60,
    ) as ops:
        for day in sorted(days):
            run = await http_retry(
                lambda day=day: ops.post(  # type: ignore[misc]
                    "/v1/reconciliations", json={"statement_date": day, "rails": ["sepa"]}
                )
            )
            assert run.status_code == 200, run.text
            for result in run.json()["data"]:
                found += [
                    (day, d["reference"], d["kind"], d["ledger_amount"] or d["statement_amount"])
                    for d in result["discrepancies"]
                    if d["reference"] in recalled or d["payment_id"] in recalled
                ]
    shifted = [
        (a, b)
        for a in found
        for b in found
        if a[2] == "missing_in_statement"
        and b[2] == "missing_in_ledger"
        and (a[1], a[3]) == (b[1], b[3])
        and a[0] != b[0]
    ]
    explained = {leg for pair in shifted for leg in pair}
    return [d for d in found if d not in explained]


async def test_payments_survive_chaos(chaos_stack: Stack) -> None:
    stack = chaos_stack
    wall = time.monotonic()
    seed = int(os.environ.get("CHAOS_SEED", random.randrange(1_000_000)))
    size = int(os.environ.get("CHAOS_PAYMENTS", "40"))
    # long enough for the longest bank window to end while payments still arrive
    plan = Plan.draw(seed, size)
    context = f"seed={seed} payments={size}"
    tenant_id = f"ten_chaos_{seed}"
    partner_key, ops_key = await make_keys(stack, tenant_id)
    base = stack.settings.api.url
    async with (
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {partner_key}"}, timeout=30
        ) as partner,
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {ops_key}"}, timeout=30
        ) as ops,
        bank_client(stack.settings) as bank,
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
        # deposit events go to a webhook endpoint: after its commit a deposit starts their
        # delivery (Temporal), which the API crash uses to catch deposits unanswered; nothing
        # listens there, the deliveries just retry
        endpoint = await partner.post(
            "/v1/webhook-endpoints",
            json={"url": f"http://127.0.0.1:{free_port()}/hooks", "event_types": ["deposit.*"]},
        )
        assert endpoint.status_code == 201, endpoint.text
        endpoint_id = endpoint.json()["id"]
        chaos = Chaos(stack, plan, ops_key, accounts)
        setup_seconds = time.monotonic() - wall
        sent: list[Sent] = []
        started = asyncio.get_running_loop().time()
        events = asyncio.create_task(chaos.run_events(started))
        faults_over = asyncio.Event()
        watcher = asyncio.create_task(chaos.watch_action_required(partner, ops, sent, faults_over))
        await send_payments(chaos, partner, ops, accounts, started, sent)
        await events
        faults_over.set()
        await watcher
        await chaos.faults.clear()
        chaos.note("faults over")
        chaos_seconds = time.monotonic() - wall
        context += "\n" + "\n".join(chaos.log)
        finals, left_open = await drive_to_the_end(chaos, partner, ops, sent)
        for task in chaos.recall_tasks:
            task.cancel()  # only a recall still waiting at the deadline
        await asyncio.gather(*chaos.recall_tasks, return_exceptions=True)
        posted = {}
        for account in accounts:
            response = await http_retry(lambda a=account: partner.get(f"/v1/accounts/{a['id']}"))  # type: ignore[misc]
            posted[account["id"]] = response.json()["balances"]["posted"]

    engine = get_engine(stack.settings)
    deposit_ids = sorted({r[0] for d in chaos.tally.deposits for r in d.retries})
    try:
        report = await verify_ledger(engine)
        async with engine.connect() as conn:
            transfers = (
                await conn.execute(
                    text(
                        "SELECT split_part(id, ':', 1) AS payment_id, kind, amount"
                        " FROM ledger_transfers WHERE id LIKE 'pay_%'"
                    )
                )
            ).all()
            deposit_rows = (
                await conn.execute(
                    text(
                        "SELECT id, credit_account_id, amount FROM ledger_transfers"
                        " WHERE id = ANY(:ids)"
                    ),
                    {"ids": deposit_ids},
                )
            ).all()
            credits_per_account: dict[str, int] = dict(
                (
                    await conn.execute(
                        text(
                            "SELECT credit_account_id, count(*) FROM ledger_transfers"
                            " WHERE code = 'deposit' AND credit_account_id = ANY(:ids)"
                            " GROUP BY credit_account_id"
                        ),
                        {"ids": [a["id"] for a in accounts]},
                    )
                ).all()
            )
            waited = (
                await conn.execute(
                    text(
                        "SELECT payment_id, detail->>'action_reason' AS reason"
                        " FROM payment_status_history WHERE status = 'action_required'"
                    )
                )
            ).all()
    finally:
        await dispose_engines()
    for row in waited:
        chaos.tally.reasons.setdefault(row.payment_id, set()).add(str(row.reason))
    bookings, statement_entries = await bank_books(stack)

    by_id = {payment.payment_id: payment for payment in sent}
    ids = set(by_id)
    by_suffix = {pid[-15:]: pid for pid in ids}
    status_of = {pid: body["status"] for pid, body in {**left_open, **finals}.items()}
    kinds: dict[str, list[str]] = {}
    for row in transfers:
        kinds.setdefault(row.payment_id, []).append(row.kind)
    debits: Counter[str] = Counter()  # bank DBIT bookings per payment
    unknown_debits = []
    traces: dict[str, set[tuple[str | None, str | None]]] = {}
    bank_returns: set[str] = set()
    for booking in bookings:
        if booking["direction"] == "CRDT" and not booking["return_code"]:
            continue  # an incoming credit (or an ACH debit entry): not a payment of ours
        pid = payment_of(booking, ids, by_suffix)
        if booking["return_code"]:
            if pid is not None:
                bank_returns.add(pid)
            continue
        if booking["direction"] != "DBIT":
            continue
        if pid is None:
            unknown_debits.append(booking)
            continue
        debits[pid] += 1
        if booking["trace_number"]:
            traces.setdefault(booking["trace_number"], set()).add((pid, booking["file_id"]))
    on_statement: Counter[str] = Counter()
    for entry in statement_entries:
        if entry.direction != "DBIT" or entry.return_code:
            continue
        pid = payment_of({"end_to_end_id": entry.end_to_end_id}, ids, by_suffix)
        if pid is not None:
            on_statement[pid] += 1

    checks: dict[str, list[Any]] = {}

    # every payment ended, where it should: settled, failed or returned with the bank's
    # reason, or canceled if the initiator asked and the bank never had it
    problems: list[Any] = [
        (pid, body["status"], action_reason(body)) for pid, body in left_open.items()
    ]
    for pid, final in finals.items():
        payment = by_id[pid]
        allowed = {payment.expect} | ({"canceled"} if payment.cancel_accepted else set())
        if final["status"] not in allowed:
            problems.append((pid, final["status"], final["failure"], "expected", allowed))
        elif final["status"] in ("failed", "returned") and not payment.recall_reason:
            code = "AC04" if final["status"] == "failed" else "AC06"
            if final["failure"]["reason_code"] != code:
                problems.append((pid, final["failure"]))
    checks["every payment terminal, with the expected outcome"] = problems

    # a recall the bank accepts ends returned (with the recall's reason), one it rejects
    # leaves the payment settled with the bank's reason; a payment canceled before it
    # settled was never recalled
    recalled = [p for p in sent if p.recall_reason and p.payment_id in finals]
    recall_problems: list[Any] = []
    for payment in recalled:
        final = finals[payment.payment_id]
        recall = final.get("recall") or {}
        if final["status"] == "canceled" and payment.cancel_accepted:
            if recall or payment.recall_sent:
                recall_problems.append((payment.payment_id, "canceled, yet recalled", recall))
            continue
        accepted = payment.recall_answer == RECALL_ACCEPT
        wanted = (
            ("returned", "accepted", None, payment.recall_reason)
            if accepted
            else ("settled", "rejected", payment.recall_answer, None)
        )
        failure = final.get("failure") or {}
        got = (
            final["status"],
            recall.get("status"),
            recall.get("answer_reason"),
            failure.get("reason_code"),
        )
        if (
            not payment.recall_sent
            or got != wanted
            or recall.get("reason") != (payment.recall_reason)
        ):
            recall_problems.append((payment.payment_id, got, "expected", wanted, recall))
    checks["recalls: accepted ends returned, rejected stays settled"] = recall_problems
    checks[
        "reconciliation matches both legs of every recalled payment"
    ] = await recall_discrepancies(
        stack, ops_key, bookings, {p.payment_id for p in recalled if p.recall_sent}
    )

    checks["the bank booked each payment at most once (bookings)"] = [
        (pid, n) for pid, n in debits.items() if n > 1
    ] + [("not ours", b) for b in unknown_debits]
    checks["an ACH trace number is in one file, for one payment"] = [
        (trace, sorted(map(str, uses))) for trace, uses in traces.items() if len(uses) > 1
    ]
    checks["the bank's camt.053 shows each payment at most once"] = [
        (pid, n) for pid, n in on_statement.items() if n > 1
    ] + [(pid, "booked but not on the statement") for pid in debits if not on_statement[pid]]
    checks["what the bank booked is posted once and settled/returned in our API"] = [
        (pid, status_of.get(pid), kinds.get(pid))
        for pid in debits
        if kinds.get(pid, []).count("post_pending") != 1
        or status_of.get(pid) not in BOOKED_STATUSES
    ]
    checks["nothing settled or posted that the bank never booked"] = [
        (pid, status_of.get(pid), kinds.get(pid))
        for pid in ids
        if not debits[pid]
        and (status_of.get(pid) in BOOKED_STATUSES or "post_pending" in kinds.get(pid, []))
    ]
    checks["no hold released for a payment the bank booked"] = [
        (pid, kinds.get(pid)) for pid in debits if "void_pending" in kinds.get(pid, [])
    ]
    checks["returned in our API exactly when the bank booked a return"] = [
        (pid, status_of.get(pid), pid in bank_returns)
        for pid in ids
        if (status_of.get(pid) == "returned") != (pid in bank_returns)
    ]
    checks["money moved once: one hold, then one post or one void"] = [
        (pid, status_of[pid], kinds.get(pid))
        for pid in finals
        if sorted(kinds.get(pid, [])) not in [sorted(k) for k in LEDGER_KINDS[status_of[pid]]]
    ]
    checks["ledger balanced (verify_ledger)"] = list(report.problems[:5])

    # the deposits retried across the API crash: one deposit per key, credited once
    deposit_problems: list[Any] = []
    deposited: Counter[str] = Counter()
    count_of: Counter[str] = Counter()
    rows = {row.id: row for row in deposit_rows}
    for deposit in chaos.tally.deposits:
        answered = {deposit_id for deposit_id, _ in deposit.retries}
        if deposit.first_id is not None:
            answered.add(deposit.first_id)
        if len(answered) != 1 or not deposit.retries[-1][1]:
            deposit_problems.append((deposit.key, deposit.first_id, deposit.retries))
            continue
        credit = rows.get(answered.pop())
        if credit is None or (credit.credit_account_id, credit.amount) != (
            deposit.account_id,
            deposit.amount,
        ):
            deposit_problems.append((deposit.key, "ledger", credit))
        deposited[deposit.account_id] += deposit.amount
        count_of[deposit.account_id] += 1
    for account in accounts:
        if credits_per_account.get(account["id"], 0) != 1 + count_of[account["id"]]:
            deposit_problems.append(
                (account["id"], credits_per_account.get(account["id"]), 1 + count_of[account["id"]])
            )
    checks["each deposit retried across the API crash credited exactly once"] = deposit_problems

    settled_out: Counter[str] = Counter()
    for pid, final in finals.items():
        if final["status"] == "settled":
            settled_out[final["account_id"]] += by_id[pid].amount
    checks["balances: funding + deposits - settled payments"] = [
        (a["id"], posted[a["id"]], DEPOSIT + deposited[a["id"]] - settled_out[a["id"]])
        for a in accounts
        if posted[a["id"]] != DEPOSIT + deposited[a["id"]] - settled_out[a["id"]]
    ]

    # no workflow is stuck retrying a failing workflow task
    stuck = []
    client = await connect(stack.settings)
    async for execution in client.list_workflows("ExecutionStatus='Running'"):
        described = await client.get_workflow_handle(execution.id).describe()
        pending = described.raw_description.pending_workflow_task
        if pending.attempt > 1:
            stuck.append((execution.id, pending.attempt))
    checks["no workflow task failing again and again"] = stuck

    # the webhook delivery of each deposit's event was started, by the first request or,
    # after the crash, by the retry that replayed its stored answer (a deposit whose API
    # died between its commit and the delivery start must still announce itself)
    undelivered: list[str] = []
    for deposit in chaos.tally.deposits:
        deposit_id = deposit.retries[0][0]
        handle = client.get_workflow_handle(f"whd_evt_{deposit_id}_credited_{endpoint_id}")
        try:
            await handle.describe()
        except RPCError:
            undelivered.append(deposit_id)
    checks["every deposit's webhook delivery started, crash or not"] = undelivered

    # the report: outcomes, what the chaos did, each invariant, the wall time
    tally = chaos.tally
    reasons = Counter(reason for seen in tally.reasons.values() for reason in seen)
    recall_outcomes = Counter(
        body["recall"]["status"] for body in finals.values() if body.get("recall")
    )
    lost = [d for d in tally.deposits if d.first_id is None]
    replayed = sum(1 for d in lost if d.retries[0][1])
    lines = [
        f"chaos {context.splitlines()[0]}",
        f"outcomes by status: {dict(Counter(status_of.values()))}",
        f"by rail: {dict(Counter((p.rail, status_of.get(p.payment_id)) for p in sent))}",
        f"waited in action_required: {len(tally.reasons)} payments, reasons {dict(reasons)}",
        f"cancels sent (by HTTP status): {dict(tally.cancels)}, accepted and canceled:"
        f" {sum(1 for s in status_of.values() if s == 'canceled')}",
        f"ops retries sent (by HTTP status): {dict(tally.retries)}",
        f"client requests tried again (why): {dict(CLIENT_RETRIES)}",
        f"deposits across API crashes: {len(tally.deposits)}, answer lost {len(lost)},"
        f" of which committed before the crash (replayed) {replayed}",
        f"recalls planned {sum(1 for p in sent if p.recall_reason)}, sent"
        f" {sum(p.recall_sent for p in sent)} (API answers {dict(tally.recalls)}),"
        f" answered {dict(recall_outcomes)}",
        f"bank bookings: {len(bookings)}, payments booked {len(debits)},"
        f" returns {len(bank_returns)}",
        f"wall: {time.monotonic() - wall:.0f} s (setup {setup_seconds:.0f} s, until the faults"
        f" ended {chaos_seconds:.0f} s)",
    ]
    for name, found in checks.items():
        lines.append(
            f"  {'ok  ' if not found else 'FAIL'} {name}" + (f": {found[:5]}" if found else "")
        )
    print("\n" + "\n".join(lines) + "\nevents:\n" + "\n".join(chaos.log))
    failed = [name for name, found in checks.items() if found]
    assert not failed, (context, failed, [checks[name][:5] for name in failed])
