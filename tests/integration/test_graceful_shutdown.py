"""SIGTERM during an activity: the worker lets it finish before it exits; nothing is retried."""

from __future__ import annotations

import asyncio
import time

from kernel.temporal_client import connect
from ops.devstack import Stack
from tests.bank_client import bank_client
from tests.integration.helpers import Tenant, funded_account, pay, payment_body, wait_for_status


async def test_sigterm_drains_the_running_activity(tenant: Tenant, stack: Stack) -> None:
    account = await funded_account(tenant, 1_000)
    async with bank_client(stack.settings) as bank:
        await bank.put("/v1/admin/faults", json={"latency_seconds": 3})
        try:
            payment = await pay(tenant.partner, payment_body(account["id"], 10))
            await asyncio.sleep(1.0)  # the worker is now inside submit_to_rail
            started = time.monotonic()
            stack.stop("worker")  # SIGTERM, then wait for the process to exit
            drained_for = time.monotonic() - started
        finally:
            await bank.put("/v1/admin/faults", json={"latency_seconds": 0})
    stack.start_worker()
    final = await wait_for_status(tenant.partner, payment["id"], {"settled"})
    assert final["status"] == "settled"
    assert drained_for >= 1.0  # it waited for the bank's answer instead of dying at once
    client = await connect(stack.settings)
    submits = [
        event.activity_task_started_event_attributes.attempt
        async for event in client.get_workflow_handle(payment["id"]).fetch_history_events()
        if event.HasField("activity_task_started_event_attributes")
    ]
    scheduled = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        async for event in client.get_workflow_handle(payment["id"]).fetch_history_events()
        if event.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled.count("submit_to_rail") == 1
    assert all(attempt == 1 for attempt in submits)  # no step was cut off and retried
