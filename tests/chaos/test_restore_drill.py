"""The restore drill (issue #24, item 4; docs/runbooks/restore.md): lose the ledger database,
restore it to a point before the last payments, heal, and lose no payment.

Payments flow through the real stack (API, worker, Temporal, the bank simulator) with WAL
streamed into the archive; a base backup; more payments; the restore point; the "last"
payments, which settle at the bank; a few more still in flight; then PostgreSQL is stopped
and its data directory deleted. The runbook's two commands follow, from the CLI as an
operator types them: `payments backup restore --to <point>` and `payments heal --since
<point>`. Then every payment must settle, the bank must have booked each exactly once, the
ledger must hold exactly one hold and one post for each, `payments ledger verify --full` and
`payments audit verify --full` must pass, and the audit chain must carry a
`database.restored` record linking the restored head to the lost one.

Measured and printed (`pytest -s`): RPO (committed data the restore gave up: the last commit
before the loss less the last one kept; and what the archive itself lost) and RTO (loss to
the API serving again, and to the heal done). `make drill-restore` runs it at full size
(`DRILL_PAYMENTS`, 40 per phase); `make test` runs it with 2.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest

from kernel.settings import PROJECT_ROOT
from ops.backup import Backups
from ops.devstack import Stack, http_ok, settings_env
from tests.chaos.test_outages import ach_body, game_day, transfers_of
from tests.conftest import make_settings
from tests.integration.helpers import (
    Tenant,
    funded_account,
    pay,
    payment_body,
    wait_for_status,
)

PER_PHASE = int(os.environ.get("DRILL_PAYMENTS", "2"))
IN_FLIGHT = 2
ACH_STRADDLING = 2
AMOUNT = 1_000
# guards, not timed assertions
COMMAND_GUARD_SECONDS = 600.0
SETTLE_GUARD_SECONDS = 180.0


@pytest.fixture(scope="module")
def drill_stack() -> Iterator[Stack]:
    """A stack of its own (its database gets deleted) with WAL archiving on."""
    data_dir = Path(tempfile.mkdtemp(prefix="payments-drill-"))
    data_dir.chmod(0o755)  # the server's system user reads the archive under it
    # one customer pays every payment of the drill: at `make drill-restore`'s size (3 x 40 SEPA
    # and the ACH ones in a day) the velocity limits would send the last ones to review,
    # which is not what a restore drill is about
    settings = make_settings(data_dir).updated(
        {
            "rails.poll_interval_seconds": 2.0,
            "sepa.return_window_seconds": 0.0,
            **{f"limits.daily_count_{tier}": 10_000 for tier in ("low", "medium", "high")},
            **{f"limits.daily_amount_{tier}": 10**12 for tier in ("low", "medium", "high")},
        }
    )
    stack = Stack(settings, web_ui=False, archive_wal=True)
    try:
        stack.start_all()
        yield stack
    finally:
        stack.stop_all()
        if not os.environ.get("DRILL_KEEP"):  # kept to read the logs of a failed drill
            shutil.rmtree(data_dir, ignore_errors=True)


def payments_cli(stack: Stack, *args: str) -> str:
    """Run `payments <args>` as an operator would (the stack's settings in the environment);
    must exit 0. Returns its output."""
    done = subprocess.run(
        [sys.executable, "-m", "ops.cli", *args],
        env=settings_env(stack.settings),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=COMMAND_GUARD_SECONDS,
        check=False,
    )
    output = done.stdout + done.stderr
    print(f"$ payments {' '.join(args)}\n{output.rstrip()}", flush=True)
    assert done.returncode == 0, output
    return output


def last_commit(stack: Stack) -> tuple[datetime, int, str]:
    """The newest commit the live database shows, and its audit chain's head."""
    head = Backups(stack.settings.data_dir / "backups", stack.postgres)._head(stack.postgres)
    assert head.last_commit_at is not None
    return head.last_commit_at, head.audit_seq, head.audit_hash


async def settle(partner: httpx.AsyncClient, account_id: str, count: int) -> list[str]:
    """`count` SEPA payments, each waited for until settled."""
    ids = [(await pay(partner, payment_body(account_id, AMOUNT)))["id"] for _ in range(count)]
    for payment_id in ids:
        await wait_for_status(partner, payment_id, {"settled"}, timeout=SETTLE_GUARD_SECONDS)
    return ids


async def settle_ach(partner: httpx.AsyncClient, bank: httpx.AsyncClient, ids: list[str]) -> None:
    """Move the bank's clock to its ACH cut-offs until every one of `ids` settled."""
    deadline = time.monotonic() + SETTLE_GUARD_SECONDS
    while True:
        found = [(await partner.get(f"/v1/payments/{i}")).json()["status"] for i in ids]
        if set(found) == {"settled"}:
            return
        assert time.monotonic() < deadline, found
        if "submitted" in found:
            await bank.post("/v1/admin/clock/advance", json={"to": "next_ach_cutoff"})
        await asyncio.sleep(0.5)


async def deposit(ops: httpx.AsyncClient, account_id: str, amount: int) -> None:
    """Credit `amount` to the account (what ops book for an incoming credit)."""
    response = await ops.post(
        "/v1/deposits",
        json={"account_id": account_id, "amount": amount, "currency": "EUR"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.text


async def test_restore_drill_loses_no_payment(drill_stack: Stack) -> None:
    """The drill; see the module docstring. The phases, in time order:

    before the backup: accounts funded, PER_PHASE SEPA payments settled; base backup;
    kept: PER_PHASE SEPA payments settled, ACH_STRADDLING ACH payments submitted;
    the restore point;
    lost: the ACH ones settle (the restored database knows them as submitted), PER_PHASE
    SEPA payments settle, a deposit and a payment it funds settle (the restore loses the
    deposit: the heal cannot hold that payment and marks it for ops), IN_FLIGHT payments
    are sent; then the database is deleted.
    """
    stack = drill_stack
    base = stack.settings.api.url
    # a game day's tenant and clients (the bank's clock set to now), with restore.md's name
    async with game_day(stack, "restore.md") as day:
        partner, ops, bank = day.partner, day.ops, day.bank
        tenant = Tenant(day.tenant_id, partner, ops)
        funding = 10 * AMOUNT * (3 * PER_PHASE + IN_FLIGHT)
        account = await funded_account(tenant, funding)
        usd = await funded_account(tenant, funding, "USD")
        # funded only after the restore point: the restore loses its deposit
        late = await funded_account(tenant, 0)

        before_backup = await settle(partner, account["id"], PER_PHASE)
        payments_cli(stack, "backup", "create")
        payments_cli(stack, "backup", "verify")
        kept = await settle(partner, account["id"], PER_PHASE)
        straddling = [
            (await pay(partner, ach_body(usd["id"], AMOUNT)))["id"] for _ in range(ACH_STRADDLING)
        ]
        for payment_id in straddling:
            await wait_for_status(partner, payment_id, {"submitted"}, SETTLE_GUARD_SECONDS)
        await asyncio.sleep(0.5)
        restore_point = datetime.now(UTC)
        await asyncio.sleep(0.5)
        await settle_ach(partner, bank, straddling)
        lost = await settle(partner, account["id"], PER_PHASE)
        await deposit(ops, late["id"], AMOUNT)
        unfunded = await settle(partner, late["id"], 1)
        in_flight = [
            (await pay(partner, payment_body(account["id"], AMOUNT)))["id"]
            for _ in range(IN_FLIGHT)
        ]
        truth_commit, truth_seq, _ = last_commit(stack)

        # the loss: the server stops at once, its data directory is gone
        lost_at = time.monotonic()
        stack.postgres.stop("immediate")
        shutil.rmtree(stack.postgres.pgdata)

        restored = payments_cli(stack, "backup", "restore", "--to", restore_point.isoformat())
        while not http_ok(f"{base}/readyz"):
            await asyncio.sleep(0.1)
        serving = time.monotonic() - lost_at
        healed_output = payments_cli(stack, "heal", "--since", restore_point.isoformat())
        healed_at = time.monotonic() - lost_at

        # the payment whose funding the restore lost waits for ops, as the runbook says
        marked = (await partner.get(f"/v1/payments/{unfunded[0]}")).json()
        assert marked["status"] == "action_required", marked
        assert marked["action"]["reason"] == "ledger_out_of_sync", marked
        assert unfunded[0] in payments_cli(stack, "list", "--status", "action_required")
        # ops book the lost credit again (the bank's statement shows it) and heal once more
        await deposit(ops, late["id"], AMOUNT)
        payments_cli(stack, "heal", "--since", restore_point.isoformat())

        sepa = before_backup + kept + lost + unfunded + in_flight
        everything = sepa + straddling
        finals = {
            payment_id: await wait_for_status(
                partner, payment_id, {"settled", "action_required"}, SETTLE_GUARD_SECONDS
            )
            for payment_id in everything
        }
        settled_at = time.monotonic() - lost_at

        # --- invariants ------------------------------------------------------------------
        statuses = Counter(body["status"] for body in finals.values())
        assert statuses == {"settled": len(everything)}, finals
        payments_cli(stack, "ledger", "verify", "--full")
        payments_cli(stack, "audit", "verify", "--full")
        bookings = (await bank.get("/v1/admin/bookings")).json()["data"]
        booked = Counter(b["end_to_end_id"] for b in bookings)
        assert {booked[p] for p in sepa} | {booked[p[-15:]] for p in straddling} == {1}, booked
        kinds = await transfers_of(stack, everything)
        assert all(k == ["pending", "post_pending"] for k in kinds.values()), kinds
        for paid_from, count in ((account, len(sepa) - 1), (usd, len(straddling)), (late, 1)):
            read = await partner.get(f"/v1/accounts/{paid_from['id']}")
            funded = AMOUNT if paid_from is late else funding
            assert read.json()["balances"]["posted"] == funded - AMOUNT * count, read.text

        # the chain goes on across the restore: the restore's record follows the restored
        # head and names the lost one
        with psycopg.connect(stack.postgres._dsn("payments")) as conn:
            record = conn.execute(
                "SELECT seq, prev_hash, detail FROM audit_log"
                " WHERE action = 'database.restored' ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            assert record is not None
            seq, prev_hash, detail = record
            previous = conn.execute(
                "SELECT hash FROM audit_log WHERE chain = '' AND seq = %s", (seq - 1,)
            ).fetchone()
            heals = conn.execute(
                "SELECT detail->>'outcome', count(DISTINCT subject) FROM audit_log"
                " WHERE action = 'payment.healed' GROUP BY 1"
            ).fetchall()
        assert previous is not None and previous[0] == prev_hash == detail["restored_head_hash"]
        # the heads are the platform chain's: payments extend their tenants' chains, so the
        # loss need not have advanced it
        assert detail["lost_head_seq"] >= truth_seq >= detail["restored_head_seq"], detail
        outcomes: dict[str, int] = {str(k): int(n) for k, n in heals}
        healed = outcomes.get("re-driven", 0)
        # every payment that moved after the restore point was healed (the in-flight ones
        # too, unless their own workflow got there first), and the unfunded one twice
        expected = len(straddling) + len(lost) + len(unfunded)
        assert expected <= healed <= expected + len(in_flight), healed_output
        assert outcomes.get("action_required") == 1, outcomes

        kept_commit = datetime.fromisoformat(detail["last_commit_kept"])
        archive_end = datetime.fromisoformat(detail["last_commit_lost"])
        rpo = (truth_commit - kept_commit).total_seconds()
        archive_rpo = max(0.0, (truth_commit - archive_end).total_seconds())
        print(
            f"\nrestore drill: {len(everything)} payments ({PER_PHASE} SEPA per phase,"
            f" {ACH_STRADDLING} ACH across the restore point, 1 funded after it,"
            f" {IN_FLIGHT} in flight); restored to {restore_point.isoformat()}\n"
            f"  RPO {rpo:.2f}s of commits given up by the restore point"
            f" (the WAL archive itself lost {archive_rpo:.2f}s)\n"
            f"  RTO {serving:.1f}s loss -> API serving; {healed_at:.1f}s -> healed;"
            f" {settled_at:.1f}s -> every payment settled\n"
            f"  healed {healed} payment(s) re-driven, 1 marked action_required"
            f" (ledger_out_of_sync) then re-driven after ops re-booked its deposit\n"
            f"  {restored.strip().splitlines()[0]}\n"
            f"  invariants: each booked once by the bank, held and posted once;"
            f" ledger and audit verify --full OK",
            flush=True,
        )
