"""The audit trail: decisions are chained, tampering is refused or detected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from kernel import audit
from kernel.db import dispose_engines, get_engine
from kernel.tables import audit_log
from ops.devstack import Stack, settings_env
from tests.integration.helpers import Tenant, funded_account, pay, payment_body, wait_for_status


async def test_decisions_are_chained_and_tampering_is_caught(tenant: Tenant, stack: Stack) -> None:
    account = await funded_account(tenant, 1_000)
    payment = await pay(
        tenant.partner, payment_body(account["id"], 10, name="Banco Nacional de Cuba")
    )
    await wait_for_status(tenant.partner, payment["id"], {"in_review"})
    decided = await tenant.ops.post(
        f"/v1/payments/{payment['id']}/review", json={"decision": "approve", "note": "namesake"}
    )
    assert decided.status_code == 200, decided.text
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        actions = (
            await conn.execute(
                select(audit_log.c.action, audit_log.c.actor)
                .where(audit_log.c.subject == payment["id"])
                .order_by(audit_log.c.at)
            )
        ).all()
    assert [a for a, _ in actions] == [
        "payment.initiated",
        "screening.completed",
        "payment.review.approve",
    ]
    assert actions[2][1] == "ops-olga"
    cli = [str(Path(sys.executable).parent / "payments"), "audit", "verify"]
    ok = subprocess.run(cli, env=settings_env(stack.settings), capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stdout + ok.stderr

    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE audit_log SET actor = 'someone-else'"))

    async def set_note(note: str) -> None:
        async with engine.begin() as conn:
            # only a superuser bypassing triggers can do this; the chain must still tell
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(
                text(
                    "UPDATE audit_log SET detail = jsonb_set(detail, '{note}', to_jsonb("
                    "CAST(:note AS text))) WHERE subject = :p AND action = 'payment.review.approve'"
                ),
                {"note": note, "p": payment["id"]},
            )

    await set_note("nothing to see")
    try:
        report = await audit.verify(engine)
        assert not report.ok
        assert "was altered" in report.problems[0]
        # the record is older than the checkpoint the first run wrote: the full check's
        failed = subprocess.run(
            [*cli, "--full"], env=settings_env(stack.settings), capture_output=True, text=True
        )
        assert failed.returncode == 1 and failed.stdout.startswith("FAIL")
    finally:
        await set_note("namesake")
    assert (await audit.verify(engine)).ok
    await dispose_engines()
