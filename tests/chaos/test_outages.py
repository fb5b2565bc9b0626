"""Game days (issue #24, item 5): Temporal kept down, then PostgreSQL kept down, each run by
its runbook.

Each game day follows docs/runbooks/<outage>.md: the runbook's `sh phase=confirm` commands
run while the dependency is down, the dependency is brought back (the test plays the
platform team), and the `sh phase=recover` commands run, in order; the commands are parsed
from the runbook, so runbook and drill cannot drift. Meanwhile partners keep sending
payments with Idempotency-Keys, which must be refused with 503 + `Retry-After` and create
nothing; after recovery each refused request is sent again with its key and must give
exactly one payment, and every payment that was in flight must settle, with the ledger
and the bank's books agreeing.

`GAMEDAY_OUTAGE_SECONDS` (15 in `make test`) is how long each dependency stays down; a
longer day, e.g. `GAMEDAY_OUTAGE_SECONDS=300 make e2e`, shows the same with a real outage's
length. The figures of each day are printed (`pytest -s`) and carried in every failure.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select, text
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from kernel.db import dispose_engines, get_engine
from kernel.ids import derived_id
from kernel.tables import payments
from kernel.temporal_client import connect
from ops.devstack import Stack
from rails.charset import epc_text
from services.payments import PaymentOrder, start_payment_workflow
from services.verification import verify_books
from tests.bank_client import bank_client
from tests.chaos.runbooks import operator_environment, run_command, runbook_commands
from tests.integration.helpers import Tenant, funded_account, make_keys, pay

OUTAGE_SECONDS = float(os.environ.get("GAMEDAY_OUTAGE_SECONDS", "15"))
# a guard, not a timed assertion: how long the drive to the end may take before the game day
# is declared stuck
SETTLE_GUARD_SECONDS = 180.0
# in flight when the dependency goes: SEPA ones caught wherever they are, ACH ones waiting
# for the bank's cut-off (the test moves the bank's clock only after the recovery)
IN_FLIGHT_SEPA = 3
IN_FLIGHT_ACH = 2
# whatever the outage's length, at least this many requests are refused and retried
MIN_REFUSED = 3
ACH_CREDITOR = {
    "name": "John Smith",
    "country": "US",
    "routing_number": "021000021",
    "account_number": "123456789",
}
SEPA_CREDITOR = {"name": "Erika Mustermann", "country": "DE", "iban": "DE89370400440532013000"}


@dataclass
class GameDay:
    """One game day's stack, clients and record of what happened."""

    stack: Stack
    runbook: str
    tenant_id: str
    partner: httpx.AsyncClient
    ops: httpx.AsyncClient
    bank: httpx.AsyncClient
    log: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def note(self, line: str) -> None:
        """A line of the day's report, stamped with the seconds since the day began."""
        stamped = f"{time.monotonic() - self.started:6.1f}s {line}"
        self.log.append(stamped)
        print(f"[{self.runbook}] {stamped}", flush=True)

    @property
    def report(self) -> str:
        """Everything noted so far (carried in every assertion message)."""
        return "\n".join(self.log)

    async def run_phase(self, phase: str) -> None:
        """Run the runbook's commands of `phase` in order; each must exit 0."""
        commands = runbook_commands(self.runbook)[phase]
        assert commands, f"{self.runbook} has no `sh phase={phase}` block"
        for command in commands:
            done = await run_command(command, operator_environment(self.stack))
            output = (done.stdout + done.stderr).strip().splitlines()
            self.note(f"{phase}$ {command[:110]} -> exit {done.returncode}")
            for line in output[-3:]:
                self.note(f"    {line[:150]}")
            assert done.returncode == 0, f"{phase}: {command}\n{done.stdout}\n{done.stderr}"


@asynccontextmanager
async def game_day(stack: Stack, runbook: str) -> AsyncIterator[GameDay]:
    """A tenant of its own with a partner and an ops client, and the bank's admin client."""
    tenant_id = f"ten_gameday_{uuid.uuid4().hex[:8]}"
    partner_key, ops_key = await make_keys(stack, tenant_id)
    base = stack.settings.api.url
    async with (
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {partner_key}"}, timeout=60
        ) as partner,
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {ops_key}"}, timeout=60
        ) as ops,
        bank_client(stack.settings) as bank,
    ):
        day = GameDay(stack, runbook, tenant_id, partner, ops, bank)
        await bank.put("/v1/admin/clock", json={"now": datetime.now(UTC).isoformat()})
        yield day


def sepa_body(account_id: str, amount: int) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "amount": amount,
        "currency": "EUR",
        "rail": "sepa",
        "creditor": SEPA_CREDITOR,
        "remittance_info": "Game day",
    }


def ach_body(account_id: str, amount: int) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "amount": amount,
        "currency": "USD",
        "rail": "ach",
        "creditor": ACH_CREDITOR,
    }


async def open_accounts(day: GameDay) -> dict[str, dict[str, Any]]:
    """A funded EUR and a funded USD account, by currency."""
    tenant = Tenant(day.tenant_id, day.partner, day.ops)
    return {c: await funded_account(tenant, 1_000_000, c) for c in ("EUR", "USD")}


async def send_in_flight(day: GameDay, accounts: dict[str, dict[str, Any]]) -> list[str]:
    """Start SEPA and ACH payments just before the outage; returns their ids."""
    ids = [
        (await pay(day.partner, sepa_body(accounts["EUR"]["id"], 100 + n)))["id"]
        for n in range(IN_FLIGHT_SEPA)
    ]
    ids += [
        (await pay(day.partner, ach_body(accounts["USD"]["id"], 100 + n)))["id"]
        for n in range(IN_FLIGHT_ACH)
    ]
    return ids


async def statuses(day: GameDay, ids: list[str]) -> dict[str, int]:
    """How many of the payments are in each status (from the API)."""
    found = [(await day.partner.get(f"/v1/payments/{i}")).json()["status"] for i in ids]
    return dict(Counter(found))


def assert_refused(day: GameDay, response: httpx.Response, code: str) -> None:
    """503, the outage's code, and a whole number of seconds to wait."""
    assert response.status_code == 503, (response.status_code, response.text, day.report)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code, (response.text, day.report)
    assert int(response.headers["retry-after"]) >= 1, day.report


async def refuse_payments_while_down(
    day: GameDay, accounts: dict[str, dict[str, Any]], code: str, reads_ok: list[str]
) -> list[tuple[str, dict[str, Any]]]:
    """Send payments (alternately SEPA and ACH) for the outage's length, each refused with
    503 `code`; between them, read what `reads_ok` names (200) or expect the same refusal
    for reads. Returns each refused request's key and body."""
    refused: list[tuple[str, dict[str, Any]]] = []
    loop = asyncio.get_running_loop()
    until = loop.time() + OUTAGE_SECONDS
    while loop.time() < until or len(refused) < MIN_REFUSED:
        n = len(refused)
        body = (
            sepa_body(accounts["EUR"]["id"], 500 + n)
            if n % 2 == 0
            else ach_body(accounts["USD"]["id"], 500 + n)
        )
        key = str(uuid.uuid4())
        response = await day.partner.post(
            "/v1/payments", json=body, headers={"Idempotency-Key": key}
        )
        assert_refused(day, response, code)
        refused.append((key, body))
        for path in reads_ok:
            read = await day.partner.get(path)
            if code == "database_unavailable":
                assert_refused(day, read, code)
            else:
                assert read.status_code == 200, (path, read.text, day.report)
        await asyncio.sleep(1.0)
    day.note(f"{len(refused)} POST /v1/payments refused with 503 {code} + Retry-After")
    return refused


async def retry_refused(day: GameDay, refused: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Send every refused request again with its key: each creates its payment now (not a
    replay of anything), and sending it once more replays that payment."""
    ids = []
    for key, body in refused:
        headers = {"Idempotency-Key": key}
        first = await day.partner.post("/v1/payments", json=body, headers=headers)
        assert first.status_code == 202, (first.text, day.report)
        assert "idempotent-replayed" not in first.headers, day.report
        again = await day.partner.post("/v1/payments", json=body, headers=headers)
        assert again.status_code == 202, (again.text, day.report)
        assert again.headers["idempotent-replayed"] == "true", day.report
        assert again.json()["id"] == first.json()["id"], day.report
        ids.append(first.json()["id"])
    day.note(f"{len(ids)} refused requests sent again with their keys: {len(ids)} payments")
    return ids


async def drive_to_settlement(day: GameDay, ids: list[str]) -> dict[str, dict[str, Any]]:
    """What ops do after the recovery: retry what waits in action_required, move the bank's
    clock to the ACH cut-off while files wait, until every payment settled (or the guard)."""
    finals: dict[str, dict[str, Any]] = {}
    retried: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_GUARD_SECONDS
    while len(finals) < len(ids) and loop.time() < deadline:
        ach_waiting = False
        for payment_id in ids:
            if payment_id in finals:
                continue
            body = (await day.partner.get(f"/v1/payments/{payment_id}")).json()
            if body["status"] in ("settled", "failed", "rejected", "canceled", "returned"):
                finals[payment_id] = body
            elif body["status"] == "action_required":
                reason = (body.get("action") or {}).get("reason", "?")
                retried[reason] += 1
                await day.ops.post(f"/v1/payments/{payment_id}/retry")
            elif body["rail"] == "ach" and body["status"] == "submitted":
                ach_waiting = True
        if ach_waiting:
            await day.bank.post("/v1/admin/clock/advance", json={"to": "next_ach_cutoff"})
        await asyncio.sleep(1.0)
    statuses = Counter(body["status"] for body in finals.values())
    day.note(f"after recovery: {dict(statuses)}; ops retries by reason: {dict(retried)}")
    stuck = set(ids) - set(finals)
    assert not stuck, f"not settled: {sorted(stuck)}\n{day.report}"
    return finals


async def check_invariants(day: GameDay, in_flight: list[str], retried: list[str]) -> None:
    """Every payment settled; exactly one payment per request accepted; the bank booked
    each once; the books balance."""
    finals = await drive_to_settlement(day, in_flight + retried)
    assert {body["status"] for body in finals.values()} == {"settled"}, day.report
    engine = get_engine(day.stack.settings)
    try:
        async with engine.connect() as conn:
            count = (
                await conn.execute(
                    select(func.count()).where(payments.c.tenant_id == day.tenant_id)
                )
            ).scalar_one()
        books = await verify_books(engine, full=True, actor="gameday")
    finally:
        await dispose_engines()
    assert count == len(in_flight) + len(retried), (count, day.report)
    assert books.ok, (books.problems, day.report)
    bookings = (await day.bank.get("/v1/admin/bookings")).json()["data"]
    booked: Counter[str] = Counter()
    for payment_id in finals:
        # SEPA names a payment by its end-to-end id, ACH by the id's last 15 characters
        booked[payment_id] = sum(
            1 for b in bookings if b.get("end_to_end_id") in (payment_id, payment_id[-15:])
        )
    assert set(booked.values()) == {1}, (dict(booked), day.report)
    # one hold and one post each: nothing held or paid twice
    kinds = await transfers_of(day.stack, list(finals))
    assert all(k == ["pending", "post_pending"] for k in kinds.values()), (kinds, day.report)
    day.note(
        f"invariants: {count} payments for {len(in_flight)} in flight + {len(retried)} retried,"
        f" each booked once by the bank, held and posted once, ledger verify OK"
        f" ({books.checked})"
    )


async def hung_start(
    day: GameDay, accounts: dict[str, dict[str, Any]]
) -> tuple[str, dict[str, Any]]:
    """Temporal hangs (SIGSTOP) while a payment starts: the start outlives its
    `rpc_timeout`, the API answers 503 and rolls the payment's row back.

    The request may still reach Temporal when it wakes (here it usually does not: the client
    cancelled the stream first), leaving a workflow whose payment does not exist. So that
    the day always covers that case, the test then starts that workflow itself, exactly as
    the API would have: it must move no money, and the key's retry must join it. Returns
    the key and the body."""
    temporal = day.stack.processes["temporal"]
    key, body = str(uuid.uuid4()), sepa_body(accounts["EUR"]["id"], 777)
    os.kill(temporal.pid, signal.SIGSTOP)
    try:
        response = await day.partner.post(
            "/v1/payments", json=body, headers={"Idempotency-Key": key}
        )
    finally:
        os.kill(temporal.pid, signal.SIGCONT)
    assert_refused(day, response, "orchestrator_unavailable")
    payment_id = derived_id("pay", day.tenant_id, key)
    client = await connect(day.stack.settings)
    started = False
    # whether the woken server took the request up (either is allowed); a guard, not a timing
    for _ in range(10):
        try:
            await client.get_workflow_handle(payment_id).describe()
            started = True
            break
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        await asyncio.sleep(0.5)
    if not started:
        await start_as_the_api_would(day, client, payment_id, body, accounts["EUR"])
    missing = await day.partner.get(f"/v1/payments/{payment_id}")
    assert missing.status_code == 404, (missing.text, day.report)
    day.note(
        "Temporal hung during a start: 503, no payment; the woken server"
        f" {'started' if started else 'did not start (the test did)'} its workflow"
    )
    return key, body


async def start_as_the_api_would(
    day: GameDay, client: Client, payment_id: str, body: dict[str, Any], account: dict[str, Any]
) -> None:
    """Start the payment's workflow with the input the API builds (api/routers/payments.py),
    as a start that reached Temporal after the API had given up on it would have."""
    creditor = {**body["creditor"], "rail_name": epc_text(body["creditor"]["name"])}
    order = PaymentOrder(
        payment_id=payment_id,
        tenant_id=day.tenant_id,
        initiated_by="partner-app",
        key_id="",
        account_id=account["id"],
        customer_id=account["customer_id"],
        amount=body["amount"],
        currency=body["currency"],
        rail=body["rail"],
        creditor=creditor,
        remittance_info=body.get("remittance_info"),
    )
    await start_payment_workflow(client, day.stack.settings, order)


async def transfers_of(stack: Stack, payment_ids: list[str]) -> dict[str, list[str]]:
    """The ledger transfer kinds of each payment, in the order they were written."""
    engine = get_engine(stack.settings)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT split_part(id, ':', 1) AS payment_id, kind FROM ledger_transfers"
                        " WHERE split_part(id, ':', 1) = ANY(:ids) ORDER BY created_at"
                    ),
                    {"ids": payment_ids},
                )
            ).all()
    finally:
        await dispose_engines()
    kinds: dict[str, list[str]] = {payment_id: [] for payment_id in payment_ids}
    for row in rows:
        kinds[row.payment_id].append(row.kind)
    return kinds


async def test_temporal_down_game_day(chaos_stack: Stack) -> None:
    """docs/runbooks/temporal-down.md, with Temporal down for GAMEDAY_OUTAGE_SECONDS."""
    async with game_day(chaos_stack, "temporal-down.md") as day:
        accounts = await open_accounts(day)
        hung_key, hung_body = await hung_start(day, accounts)
        hung_id = derived_id("pay", day.tenant_id, hung_key)
        in_flight = await send_in_flight(day, accounts)
        await asyncio.to_thread(day.stack.kill, "temporal")
        day.note(f"Temporal killed; the payments in flight: {await statuses(day, in_flight)}")
        await day.run_phase("confirm")
        reads = [
            f"/v1/payments/{in_flight[0]}",
            f"/v1/payments/{in_flight[-1]}",
            "/v1/payments?limit=5",
            f"/v1/accounts/{accounts['EUR']['id']}",
            f"/v1/accounts/{accounts['USD']['id']}/entries",
            "/v1/events?limit=5",
        ]
        refused = await refuse_payments_while_down(day, accounts, "orchestrator_unavailable", reads)
        # the key stays bound to its body across the 503: another body is refused
        key, body = refused[0]
        reused = await day.partner.post(
            "/v1/payments", json={**body, "amount": 1}, headers={"Idempotency-Key": key}
        )
        assert reused.status_code == 422, (reused.text, day.report)
        assert reused.json()["code"] == "idempotency_key_reused"
        # ... and nothing exists for any refused request
        for key, _ in refused:
            payment_id = derived_id("pay", day.tenant_id, key)
            missing = await day.partner.get(f"/v1/payments/{payment_id}")
            assert missing.status_code == 404, (missing.text, day.report)
        day.note(f"reads answered 200 throughout ({len(reads)} kinds); nothing created")
        # an API (re)started during the outage comes up and serves reads; its Temporal client
        # connects on first use (after Temporal is back: the recovery's readiness check and
        # the retried payments below go through this process)
        await asyncio.to_thread(day.stack.kill, "api")
        await asyncio.to_thread(day.stack.start_api)
        read = await day.partner.get(reads[0])
        assert read.status_code == 200, (read.text, day.report)
        refused_again = await day.partner.post(
            "/v1/payments", json=refused[-1][1], headers={"Idempotency-Key": refused[-1][0]}
        )
        assert_refused(day, refused_again, "orchestrator_unavailable")
        day.note("an API restarted during the outage started, served reads and refused with 503")
        await asyncio.to_thread(day.stack.start_temporal)
        day.note(f"Temporal restarted after {OUTAGE_SECONDS:.0f} s or more")
        await day.run_phase("recover")
        # the workflow of the hung start has had the whole outage and the recovery to run:
        # without its payment row it moved no money
        assert (await transfers_of(day.stack, [hung_id]))[hung_id] == [], day.report
        retried = await retry_refused(day, [(hung_key, hung_body), *refused])
        assert retried[0] == hung_id, day.report
        day.note("the hung start's retry joined its workflow, which had moved no money")
        await check_invariants(day, in_flight, retried)


async def test_postgres_down_game_day(chaos_stack: Stack) -> None:
    """docs/runbooks/postgres-down.md, with PostgreSQL down for GAMEDAY_OUTAGE_SECONDS."""
    async with game_day(chaos_stack, "postgres-down.md") as day:
        accounts = await open_accounts(day)
        in_flight = await send_in_flight(day, accounts)
        before = await statuses(day, in_flight)
        await asyncio.to_thread(day.stack.postgres.stop, "immediate")
        day.note(
            f"PostgreSQL crashed (immediate stop); the payments in flight just before: {before}"
        )
        await day.run_phase("confirm")
        refused = await refuse_payments_while_down(
            day, accounts, "database_unavailable", [f"/v1/payments/{in_flight[0]}"]
        )
        await asyncio.to_thread(day.stack.postgres.start)
        day.note(f"PostgreSQL restarted after {OUTAGE_SECONDS:.0f} s or more")
        await day.run_phase("recover")
        retried = await retry_refused(day, refused)
        await check_invariants(day, in_flight, retried)
