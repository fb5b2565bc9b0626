"""Breach drills (issue #16, item 7): each runbook of docs/runbooks/breach-*.md run while
payments are in flight.

The runbook's `sh phase=…` commands are parsed from the runbook and run in an operator's
shell, in order; what the runbook leaves to the platform team (a secret deployed, a process
restarted) the test does between phases. Meanwhile a partner keeps sending payments. Each
drill then checks: nothing lost (every payment accepted reaches `settled`, its workflow
completes, the ledger verifies), nothing stuck, and the old secret refused once the overlap
ends.

The drills restart the API, the worker and the bank simulator with new secrets, so they run
on a stack of their own, never the shared one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.client import ScheduleOverlapPolicy

from iso20022.pacs002 import StatusReport, TransactionStatus, build_pacs002
from kernel.db import dispose_engines, get_engine
from kernel.settings import Settings
from kernel.tables import api_keys, audit_log, payload_data_keys, payments
from kernel.temporal_client import connect
from ops.devstack import Stack
from services.payload_keys import key_ids_of
from services.verification import verify_books
from tests.chaos.runbooks import operator_environment, run_command, runbook_commands
from tests.conftest import make_settings
from tests.integration.helpers import Tenant, funded_account, make_keys, payment_body
from tests.integration.test_rails import signed
from tests.integration.webhook_support import signed_with
from tests.loopback_http import LoopbackServer, http_answer, serving

# guards, not timed assertions: how long the payments may take to end before the drill is
# declared stuck
SETTLE_GUARD_SECONDS = 180.0
TERMINAL = {"settled", "failed", "rejected", "canceled", "returned"}


@pytest.fixture(scope="module")
def breach_stack() -> Iterator[Stack]:
    """PostgreSQL, Temporal, the bank simulator, one worker and the API, of their own."""
    data_dir = Path(tempfile.mkdtemp(prefix="payments-breach-"))
    # a settled payment's workflow waits a few seconds for a return, not a minute: the drill
    # sees every workflow complete
    settings = make_settings(data_dir).updated({"sepa.return_window_seconds": 3.0})
    stack = Stack(settings, web_ui=False)
    try:
        stack.start_all()
        yield stack
    finally:
        stack.stop_all()
        shutil.rmtree(data_dir, ignore_errors=True)


def restart(stack: Stack, changes: dict[str, Any], names: tuple[str, ...]) -> None:
    """What the platform team does: deploy new settings, restart these processes."""
    stack.settings = stack.settings.updated(changes)
    for name in names:
        stack.stop(name)
    starts = {"banksim": stack.start_banksim, "worker": stack.start_worker, "api": stack.start_api}
    for name in ("banksim", "worker", "api"):
        if name in names:
            starts[name]()


@dataclass
class Drill:
    """One drill: its runbook, a tenant, and what the runbook's commands printed."""

    stack: Stack
    runbook: str
    tenant: Tenant
    partner_key: str
    ops_key: str
    variables: dict[str, str] = field(default_factory=dict)

    async def run_phase(self, phase: str) -> list[str]:
        """Run the runbook's commands of `phase`; each must exit 0. Returns their outputs."""
        commands = runbook_commands(self.runbook)[phase]
        assert commands, f"{self.runbook} has no `sh phase={phase}` block"
        outputs = []
        for command in commands:
            env = operator_environment(self.stack, self.variables)
            done = await run_command(command, env)
            last = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
            print(f"[{self.runbook}] {phase}$ {command} -> {done.returncode}: {last[0][:120]}")
            assert done.returncode == 0, f"{phase}: {command}\n{done.stdout}\n{done.stderr}"
            outputs.append(done.stdout)
        return outputs


@asynccontextmanager
async def drill(stack: Stack, runbook: str) -> AsyncIterator[Drill]:
    """A fresh tenant with a partner key and an ops key, and the runbook's variables."""
    tenant_id = f"ten_breach_{uuid.uuid4().hex[:8]}"
    partner_key, ops_key = await make_keys(stack, tenant_id)
    base = stack.settings.api.url
    async with (
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {partner_key}"}, timeout=60
        ) as partner,
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {ops_key}"}, timeout=60
        ) as ops,
    ):
        variables = {"TENANT": tenant_id, "OPERATOR": "oncall-olivia", "INCIDENT": "INC-4711"}
        yield Drill(
            stack, runbook, Tenant(tenant_id, partner, ops), partner_key, ops_key, variables
        )


@dataclass
class Traffic:
    """A partner sending a payment every few tenths of a second with `key` (read before each
    request, so the partner can switch keys) until stopped; requests lost to a restarting
    API are sent again with their Idempotency-Key. Counts the requests refused with 401."""

    stack: Stack
    account_id: str
    key: str
    ids: list[str] = field(default_factory=list)
    refused: int = 0
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def _send(self, client: httpx.AsyncClient, n: int) -> httpx.Response:
        body = payment_body(self.account_id, 100 + n)
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        gave_up = asyncio.get_running_loop().time() + SETTLE_GUARD_SECONDS
        while True:
            headers["Authorization"] = f"Bearer {self.key}"
            try:
                response = await client.post("/v1/payments", json=body, headers=headers)
            except httpx.TransportError:
                response = None  # the API is restarting
            if response is not None and response.status_code != 503:
                return response
            # a guard, not a timed assertion: an API that never comes back fails the drill
            assert asyncio.get_running_loop().time() < gave_up, "the API did not come back"
            await asyncio.sleep(0.5)

    async def _run(self) -> None:
        async with httpx.AsyncClient(base_url=self.stack.settings.api.url, timeout=60) as client:
            n = 0
            while not self.stopping.is_set():
                response = await self._send(client, n)
                if response.status_code == 401:
                    self.refused += 1
                else:
                    assert response.status_code == 202, response.text
                    self.ids.append(response.json()["id"])
                n += 1
                await asyncio.sleep(0.3)

    def start(self) -> Traffic:
        """Start sending in the background."""
        self.task = asyncio.create_task(self._run())
        return self

    async def until(self, count: int, refused: int = 0) -> None:
        """Wait until at least `count` payments were accepted (in flight) and `refused`
        requests refused."""
        while len(self.ids) < count or self.refused < refused:
            if self.task is not None and self.task.done():
                self.task.result()  # its failure, if any
                raise AssertionError("the partner stopped sending")
            await asyncio.sleep(0.2)

    async def stop(self) -> list[str]:
        """Stop sending; the ids of the payments accepted."""
        self.stopping.set()
        assert self.task is not None
        await self.task
        return self.ids


async def start_traffic(day: Drill, key: str | None = None) -> Traffic:
    """A funded account and a partner sending payments from it, a few already in flight."""
    account = await funded_account(day.tenant, 10_000_000)
    traffic = Traffic(day.stack, account["id"], key or day.partner_key).start()
    await traffic.until(3)
    return traffic


async def nothing_lost(stack: Stack, ids: list[str]) -> None:
    """Every payment settled, its workflow completed with a result this stack's settings
    decode, and the whole ledger verifies."""
    assert ids
    settings = stack.settings
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_GUARD_SECONDS
    engine = get_engine(settings)
    finals: dict[str, str] = {}
    try:
        async with engine.connect() as conn:
            while len(finals) < len(ids) and loop.time() < deadline:
                rows = (
                    await conn.execute(
                        select(payments.c.id, payments.c.status).where(payments.c.id.in_(ids))
                    )
                ).all()
                finals = {r.id: r.status for r in rows if r.status in TERMINAL}
                await conn.rollback()
                await asyncio.sleep(0.5)
        assert set(finals) == set(ids), f"stuck: {sorted(set(ids) - set(finals))}"
        assert set(finals.values()) == {"settled"}, finals
        client = await connect(settings, wait_seconds=10)
        for payment_id in ids:
            result = await asyncio.wait_for(
                client.get_workflow_handle(payment_id).result(), SETTLE_GUARD_SECONDS
            )
            assert result is not None
        books = await verify_books(engine, full=True, actor="breach-drill")
        assert books.ok, books.problems
        print(f"{len(ids)} payments settled, workflows completed and decoded; {books.checked}")
    finally:
        await dispose_engines()


async def audited(stack: Stack, action: str, subject: str) -> bool:
    """Whether the audit trail holds `action` on `subject`."""
    engine = get_engine(stack.settings)
    try:
        async with engine.connect() as conn:
            found = (
                await conn.execute(
                    select(audit_log.c.seq).where(
                        audit_log.c.action == action, audit_log.c.subject == subject
                    )
                )
            ).first()
    finally:
        await dispose_engines()
    return found is not None


async def key_id_of(stack: Stack, key: str) -> str:
    """The id (`key_…`) of a full API key."""
    prefix = key.split("_", 2)[1]
    engine = get_engine(stack.settings)
    try:
        async with engine.connect() as conn:
            found: str = (
                await conn.execute(select(api_keys.c.id).where(api_keys.c.prefix == prefix))
            ).scalar_one()
    finally:
        await dispose_engines()
    return found


async def answers(stack: Stack, key: str) -> int:
    """The status `GET /v1/payments` answers with this key."""
    async with httpx.AsyncClient(base_url=stack.settings.api.url, timeout=30) as client:
        response = await client.get("/v1/payments", headers={"Authorization": f"Bearer {key}"})
    return response.status_code


async def test_leaked_tenant_api_key(breach_stack: Stack) -> None:
    async with drill(breach_stack, "breach-tenant-api-key.md") as day:
        traffic = await start_traffic(day)
        leaked_id = await key_id_of(breach_stack, day.partner_key)
        day.variables["KEY_ID"] = leaked_id
        rotated = await day.run_phase("rotate")
        new_key = rotated[-1].strip().splitlines()[-1]
        assert new_key.startswith("psk_") and new_key != day.partner_key
        # the overlap: both keys work while the partner switches
        assert await answers(breach_stack, day.partner_key) == 200
        assert await answers(breach_stack, new_key) == 200
        before_switch = len(traffic.ids)
        traffic.key = new_key
        await traffic.until(before_switch + 2)
        await day.run_phase("revoke")
        await traffic.until(len(traffic.ids) + 2)
        await day.run_phase("verify")
        ids = await traffic.stop()
        assert traffic.refused == 0  # the partner never lost a request
        assert await answers(breach_stack, day.partner_key) == 401
        assert await answers(breach_stack, new_key) == 200
        assert await audited(breach_stack, "api_key.rotated", leaked_id)
        assert await audited(breach_stack, "api_key.revoked", leaked_id)
        await nothing_lost(breach_stack, ids)


async def test_compromised_tenant(breach_stack: Stack) -> None:
    async with (
        drill(breach_stack, "breach-tenant.md") as day,
        serving(http_answer("200 OK", {})) as receiver,
    ):
        intruder = await day.tenant.partner.post(
            "/v1/webhook-endpoints", json={"url": f"http://127.0.0.1:{receiver.port}/loot"}
        )
        assert intruder.status_code == 201, intruder.text
        traffic = await start_traffic(day)
        outputs = await day.run_phase("contain")
        assert intruder.json()["id"] in outputs[-1]
        day.variables["ENDPOINT_ID"] = intruder.json()["id"]
        await day.run_phase("endpoints")
        # the partner's traffic is refused from the revocation on
        await traffic.until(0, refused=1)
        ids = await traffic.stop()
        for key in (day.partner_key, day.ops_key):
            assert await answers(breach_stack, key) == 401
        await day.run_phase("verify")
        await nothing_lost(breach_stack, ids)
        # nothing reaches the intruder's endpoint once disabled: a payment of the
        # restored tenant raises events, and the endpoint receives none of them
        delivered = len(receiver.requests)
        day.variables.update(PRINCIPAL="partner-app", SCOPES="payments:write,payments:read")
        restored = (await day.run_phase("restore"))[-1].strip().splitlines()[-1]
        after = Traffic(breach_stack, traffic.account_id, restored).start()
        await after.until(2)
        await nothing_lost(breach_stack, await after.stop())
        assert len(receiver.requests) == delivered
        assert await audited(breach_stack, "webhook_endpoint.disabled", intruder.json()["id"])


async def test_compromised_ops_principal(breach_stack: Stack) -> None:
    async with drill(breach_stack, "breach-ops-principal.md") as day:
        # the principal holds two keys; a colleague holds another
        second = await make_second_key(breach_stack, day.tenant.tenant_id, "ops-olga")
        colleague = await make_second_key(breach_stack, day.tenant.tenant_id, "ops-oscar")
        traffic = await start_traffic(day)
        day.variables["PRINCIPAL"] = "ops-olga"
        await day.run_phase("contain")
        await traffic.until(len(traffic.ids) + 2)
        await day.run_phase("verify")
        ids = await traffic.stop()
        assert traffic.refused == 0
        assert await answers(breach_stack, day.ops_key) == 401
        assert await answers(breach_stack, second) == 401
        assert await answers(breach_stack, colleague) == 200
        assert await answers(breach_stack, day.partner_key) == 200
        await nothing_lost(breach_stack, ids)


async def make_second_key(stack: Stack, tenant_id: str, principal: str) -> str:
    """Another ops key of the tenant, for `principal`."""
    from kernel.api_keys import create_key

    engine = get_engine(stack.settings)
    try:
        async with engine.begin() as conn:
            key = await create_key(
                conn, tenant_id=tenant_id, principal=principal, scopes=["ops", "payments:read"]
            )
    finally:
        await dispose_engines()
    return key


def deliveries_about(receiver: LoopbackServer, payment_ids: set[str]) -> list[int]:
    """Indexes of the receiver's deliveries whose event is about one of these payments."""
    return [
        i
        for i, (_, body) in enumerate(receiver.requests)
        if json.loads(body).get("data", {}).get("payment_id") in payment_ids
    ]


async def delivered_after(day: Drill, receiver: LoopbackServer, traffic: Traffic) -> list[int]:
    """Deliveries about payments the partner sends from now on (signed after now)."""
    already = set(traffic.ids)
    await traffic.until(len(already) + 2)
    while True:
        fresh = deliveries_about(receiver, set(traffic.ids) - already)
        if fresh:
            return fresh
        await asyncio.sleep(0.2)


async def test_leaked_webhook_secret(breach_stack: Stack) -> None:
    async with (
        drill(breach_stack, "breach-webhook-secret.md") as day,
        serving(http_answer("200 OK", {})) as receiver,
    ):
        created = await day.tenant.partner.post(
            "/v1/webhook-endpoints", json={"url": f"http://127.0.0.1:{receiver.port}/hooks"}
        )
        assert created.status_code == 201, created.text
        endpoint_id, leaked = created.json()["id"], created.json()["secret"]
        day.variables["ENDPOINT_ID"] = endpoint_id
        traffic = await start_traffic(day)
        new_secret = (await day.run_phase("rotate"))[-1].strip().splitlines()[-1]
        assert new_secret.startswith("whsec_") and new_secret != leaked
        # the overlap: deliveries carry both signatures
        during = await delivered_after(day, receiver, traffic)
        assert all(signed_with(new_secret, receiver, i) for i in during)
        assert all(signed_with(leaked, receiver, i) for i in during)
        await day.run_phase("end")
        after = await delivered_after(day, receiver, traffic)
        await day.run_phase("verify")
        ids = await traffic.stop()
        assert all(signed_with(new_secret, receiver, i) for i in after)
        assert not any(signed_with(leaked, receiver, i) for i in after)
        assert await audited(breach_stack, "webhook_endpoint.secret_rotated", endpoint_id)
        await nothing_lost(breach_stack, ids)


async def callback_status(stack: Stack, secret: str) -> int:
    """The status the internal listener answers a status report signed with `secret`
    (about no payment of ours: a genuine one is acknowledged and changes nothing)."""
    report = build_pacs002(
        StatusReport(
            message_id=f"STS-{uuid.uuid4().hex[:8]}",
            original_message_id="pay_unknown",
            created_at=datetime.now(UTC),
            transactions=[TransactionStatus("pay_unknown", "ACSC")],
        )
    )
    url = f"{stack.settings.api.internal_url}/v1/rails/sepa/callbacks"
    headers = signed(secret, report, f"evt-{uuid.uuid4().hex}")
    async with httpx.AsyncClient(timeout=30) as client:
        return (await client.post(url, content=report, headers=headers)).status_code


async def test_leaked_callback_secret(breach_stack: Stack) -> None:
    async with drill(breach_stack, "breach-callback-secret.md") as day:
        leaked = breach_stack.settings.rails.callback_secret
        traffic = await start_traffic(day)
        new = (await day.run_phase("generate"))[-1].strip()
        assert len(new) >= 32 and new != leaked
        # 1. the API accepts both; 2. the bank signs with the new one
        restart(breach_stack, {"rails.callback_secret": f"{new},{leaked}"}, ("api",))
        assert await callback_status(breach_stack, leaked) == 200
        await traffic.until(len(traffic.ids) + 2)
        restart(breach_stack, {"rails.callback_secret": new}, ("banksim",))
        await traffic.until(len(traffic.ids) + 2)
        # 3. the API accepts the new one only
        restart(breach_stack, {"rails.callback_secret": new}, ("api",))
        await traffic.until(len(traffic.ids) + 2)
        outputs = await day.run_phase("verify")
        ids = await traffic.stop()
        assert new not in outputs[0] and leaked not in outputs[0]
        assert await callback_status(breach_stack, leaked) == 401
        assert await callback_status(breach_stack, new) == 200
        await nothing_lost(breach_stack, ids)


async def master_keys_in_use(settings: Settings) -> set[str]:
    """The master key ids the data keys are wrapped under."""
    engine = get_engine(settings)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(payload_data_keys.c.master_key_id))).all()
    finally:
        await dispose_engines()
    return {row.master_key_id for row in rows}


async def scheduled_run_key_ids(settings: Settings, schedule_id: str, since: datetime) -> set[str]:
    """Trigger the schedule, wait until a run of it started after `since` completed (a run
    whose start the worker cannot decode never does), and answer the master keys of the
    payloads in its history."""
    client = await connect(settings, wait_seconds=10)
    # a run of the schedule may still be going (a slow machine): the trigger must not be
    # skipped by the schedule's overlap policy
    await client.get_schedule_handle(schedule_id).trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_GUARD_SECONDS
    query = f'ExecutionStatus="Completed" AND StartTime > "{since.isoformat()}"'
    while loop.time() < deadline:
        async for run in client.list_workflows(query):
            if run.id.startswith(f"{schedule_id}-"):
                handle = client.get_workflow_handle(run.id, run_id=run.run_id)
                history = await handle.fetch_history()
                return {key for event in history.events for key in key_ids_of(event)}
        await asyncio.sleep(0.5)
    raise AssertionError(f"no run of {schedule_id} completed after the old key was removed")


async def test_leaked_payload_key(breach_stack: Stack) -> None:
    async with drill(breach_stack, "breach-payload-key.md") as day:
        old_keys = breach_stack.settings.codec.payload_keys
        old_id = breach_stack.settings.codec.payload_key_id
        day.variables.update(OLD_KEY_ID=old_id, NEW_KEY_ID="breach-2026-12")
        traffic = await start_traffic(day)
        assert old_id in await master_keys_in_use(breach_stack.settings)
        new_entry = (await day.run_phase("generate"))[-1].strip()
        assert new_entry.startswith("breach-2026-12:")
        assert len(base64.b64decode(new_entry.partition(":")[2])) == 32
        # 1. every process: the new key current, the old one still listed
        restart(
            breach_stack,
            {
                "codec.payload_keys": f"{new_entry},{old_keys}",
                "codec.payload_key_id": "breach-2026-12",
            },
            ("worker", "api"),
        )
        await traffic.until(len(traffic.ids) + 2)
        # before the re-wrap the check refuses: data keys and schedules still need the old key
        early = await run_command(
            f"payments payload-keys check {old_id}", operator_environment(breach_stack)
        )
        assert early.returncode == 1, early.stdout + early.stderr
        assert re.search(r"still needed: [1-9]\d* data key\(s\), schedules \[.+\]", early.stdout)
        # 2. re-wrap, and wait until nothing needs the old key (payments keep coming)
        rewrapped = await day.run_phase("rewrap")
        # the data keys made before the rotation, and every schedule's stored input
        assert re.search(r": [1-9]\d* data key\(s\) re-wrapped, [1-9]\d* schedule", rewrapped[0])
        assert await master_keys_in_use(breach_stack.settings) == {"breach-2026-12"}
        # 3. every process: the new key only
        retired_at = datetime.now(UTC)
        restart(breach_stack, {"codec.payload_keys": new_entry}, ("worker", "api"))
        await traffic.until(len(traffic.ids) + 2)
        # the schedules' next runs start from what they store (input and headers) and run
        # (its headers included: the tracing interceptor's header is encrypted too)
        assert await scheduled_run_key_ids(
            breach_stack.settings, "ledger-maintenance", retired_at
        ) == {"breach-2026-12"}
        await day.run_phase("verify")
        ids = await traffic.stop()
        assert await audited(breach_stack, "payload_keys.rewrapped", "breach-2026-12")
        # the payments that ran across both restarts decode without the old key
        await nothing_lost(breach_stack, ids)
