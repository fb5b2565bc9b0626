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
(`DRILL_PAYMENTS`, 40 per phase); `make test` runs it with 3.
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
from tests.bank_client import bank_client
from tests.chaos.test_outages import transfers_of
from tests.conftest import make_settings
from tests.integration.helpers import (
    Tenant,
    funded_account,
    make_keys,
    pay,
    payment_body,
    wait_for_status,
)

PER_PHASE = int(os.environ.get("DRILL_PAYMENTS", "3"))
IN_FLIGHT = 2
AMOUNT = 1_000
# guards, not timed assertions
COMMAND_GUARD_SECONDS = 600.0
SETTLE_GUARD_SECONDS = 180.0


@pytest.fixture(scope="module")
def drill_stack() -> Iterator[Stack]:
    """A stack of its own (its database gets deleted) with WAL archiving on."""
    data_dir = Path(tempfile.mkdtemp(prefix="payments-drill-"))
    data_dir.chmod(0o755)  # the server's system user reads the archive under it
    settings = make_settings(data_dir).updated(
        {"rails.poll_interval_seconds": 2.0, "sepa.return_window_seconds": 0.0}
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


async def test_restore_drill_loses_no_payment(drill_stack: Stack) -> None:
    stack = drill_stack
    tenant_id = f"ten_drill_{uuid.uuid4().hex[:8]}"
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
        await bank.put("/v1/admin/clock", json={"now": datetime.now(UTC).isoformat()})
        funding = 10 * AMOUNT * (3 * PER_PHASE + IN_FLIGHT)
        account = await funded_account(Tenant(tenant_id, partner, ops), funding)

        before_backup = await settle(partner, account["id"], PER_PHASE)
        payments_cli(stack, "backup", "create")
        payments_cli(stack, "backup", "verify")
        kept = await settle(partner, account["id"], PER_PHASE)
        await asyncio.sleep(0.5)
        restore_point = datetime.now(UTC)
        await asyncio.sleep(0.5)
        lost = await settle(partner, account["id"], PER_PHASE)
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

        everything = before_backup + kept + lost + in_flight
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
        assert {booked[p] for p in everything} == {1}, booked
        kinds = await transfers_of(stack, everything)
        assert all(k == ["pending", "post_pending"] for k in kinds.values()), kinds
        balance = (await partner.get(f"/v1/accounts/{account['id']}")).json()["balances"]
        assert balance["posted"] == funding - AMOUNT * len(everything), balance

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
                "SELECT hash FROM audit_log WHERE seq = %s", (seq - 1,)
            ).fetchone()
            healed_records = conn.execute(
                "SELECT count(*) FROM audit_log WHERE action = 'payment.healed'"
            ).fetchone()
        assert previous is not None and previous[0] == prev_hash == detail["restored_head_hash"]
        assert detail["lost_head_seq"] >= truth_seq > detail["restored_head_seq"], detail
        healed = healed_records[0] if healed_records else 0
        # every payment that settled after the restore point was healed (the in-flight
        # ones too, unless their own workflow got there first)
        assert len(lost) <= healed <= len(lost) + len(in_flight), healed_output

        kept_commit = datetime.fromisoformat(detail["last_commit_kept"])
        archive_end = datetime.fromisoformat(detail["last_commit_lost"])
        rpo = (truth_commit - kept_commit).total_seconds()
        archive_rpo = max(0.0, (truth_commit - archive_end).total_seconds())
        print(
            f"\nrestore drill: {len(everything)} payments ({PER_PHASE} per phase +"
            f" {IN_FLIGHT} in flight); restored to {restore_point.isoformat()}\n"
            f"  RPO {rpo:.2f}s of commits given up by the restore point"
            f" (the WAL archive itself lost {archive_rpo:.2f}s)\n"
            f"  RTO {serving:.1f}s loss -> API serving; {healed_at:.1f}s -> healed;"
            f" {settled_at:.1f}s -> every payment settled\n"
            f"  healed {healed} payment(s) ({healed_output.strip().splitlines()[-1]})\n"
            f"  {restored.strip().splitlines()[0]}\n"
            f"  invariants: each booked once by the bank, held and posted once;"
            f" ledger and audit verify --full OK",
            flush=True,
        )
