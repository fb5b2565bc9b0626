"""The ledger maintenance schedule releases pending transfers whose timeout passed."""

from __future__ import annotations

import asyncio
import re

from temporalio.client import ScheduleOverlapPolicy

from kernel.db import dispose_engines, get_engine
from kernel.temporal_client import connect
from ledger import Transfer, TransferKind, TransferResult, create_transfer, get_account
from ledger.models import settlement_account_id
from ops.devstack import Stack
from tests.integration.helpers import Tenant, funded_account
from workflows.ledger_maintenance import SCHEDULE_ID


async def test_schedule_expires_a_timed_out_hold(tenant: Tenant, stack: Stack) -> None:
    account = await funded_account(tenant, 1_000)
    engine = get_engine(stack.settings)
    hold = Transfer(
        f"timed-{account['id']}",
        account["id"],
        settlement_account_id("sepa", "EUR"),
        400,
        "EUR",
        "test_hold",
        TransferKind.PENDING,
        timeout_seconds=1,
    )
    assert await create_transfer(engine, hold) is TransferResult.OK
    await asyncio.sleep(1.2)
    client = await connect(stack.settings)
    schedule = client.get_schedule_handle(SCHEDULE_ID)
    description = await schedule.describe()
    assert description.schedule.spec.intervals[0].every.total_seconds() == 60
    # a run still going (the schedule fires every minute; a loaded machine is slow) must not
    # swallow the trigger under the schedule's overlap policy
    await schedule.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
    for _ in range(300):
        async with engine.connect() as conn:
            state = await get_account(conn, account["id"])
        assert state is not None
        if state.debits_pending == 0:
            break
        await asyncio.sleep(0.1)
    await dispose_engines()
    assert state is not None
    assert (state.debits_pending, state.credits_posted) == (0, 1_000)


async def test_verify_schedule_exports_the_gauges_the_alerts_watch(stack: Stack) -> None:
    import httpx

    from workflows.ledger_maintenance import VERIFY_SCHEDULE_ID

    client = await connect(stack.settings)
    await client.get_schedule_handle(VERIFY_SCHEDULE_ID).trigger(
        overlap=ScheduleOverlapPolicy.ALLOW_ALL
    )
    url = f"http://127.0.0.1:{stack.settings.worker.metrics_port}/metrics"
    for _ in range(300):
        body = httpx.get(url).text
        if "payments_ledger_verify_ok" in body:
            break
        await asyncio.sleep(0.1)
    assert "payments_ledger_verify_ok 1" in body
    assert "payments_ledger_verify_last_run_timestamp_seconds" in body
    assert re.search(r'payments_in_status\{[^}]*status="action_required"', body)
    assert re.search(r'payments_oldest_in_status_seconds\{[^}]*status="in_review"', body)
