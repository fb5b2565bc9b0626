"""Payment schedules through the real API, worker and Temporal Schedules (issue #19 item 4)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from temporalio.client import Client, ScheduleOverlapPolicy
from temporalio.service import RPCError

from kernel.db import dispose_engines, get_engine
from kernel.tables import payments
from kernel.temporal_client import connect
from ops.devstack import Stack
from rails.business_days import adjust_to_business_day
from services.payment_schedules import run_payment_id
from tests.integration.helpers import Tenant, funded_account, make_keys, payment_body
from workflows.models import ScheduleRunInput
from workflows.scheduled_payment import ScheduledPaymentRunWorkflow

# a loaded machine (four agents on two cores) takes its time to run a schedule's action
WAIT = 120.0


def schedule_body(account_id: str, **rule: Any) -> dict[str, Any]:
    body = payment_body(account_id, amount=1_000)
    return {"payment": body, **(rule or {"interval": "PT1H"})}


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post(
        "/v1/payment-schedules", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
    )


async def schedule_payments(client: httpx.AsyncClient, schedule_id: str) -> list[dict[str, Any]]:
    response = await client.get("/v1/payments", params={"schedule_id": schedule_id, "limit": 100})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def wait_for_payments(
    client: httpx.AsyncClient, schedule_id: str, count: int
) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + WAIT
    while True:
        found = await schedule_payments(client, schedule_id)
        if len(found) >= count:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{schedule_id}: {len(found)} payments, expected {count}")
        await asyncio.sleep(0.5)


@pytest.fixture
async def temporal(stack: Stack) -> Client:
    return await connect(stack.settings)


async def test_each_run_of_a_schedule_makes_one_payment(tenant: Tenant, temporal: Client) -> None:
    account = await funded_account(tenant, 100_000)
    response = await create(tenant.partner, schedule_body(account["id"], interval="PT1H"))
    assert response.status_code == 201, response.text
    schedule = response.json()
    assert schedule["id"].startswith("psch_") and schedule["status"] == "active"
    assert schedule["interval_seconds"] == 3600
    # the Temporal Schedule of the same id (the Web UI's Schedules lists it)
    handle = temporal.get_schedule_handle(schedule["id"])
    description = await handle.describe()
    assert description.schedule.spec.intervals[0].every == timedelta(hours=1)
    # a triggered run's nominal time is the trigger's, to the second: a run per second
    for runs in (1, 2):
        await handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
        made = await wait_for_payments(tenant.partner, schedule["id"], runs)
        await asyncio.sleep(1.1)
    assert len({payment["id"] for payment in made}) == 2
    assert all(payment["schedule_id"] == schedule["id"] for payment in made)
    assert all(payment["amount"] == 1_000 for payment in made)


async def test_a_run_repeated_for_the_same_nominal_time_pays_once(
    stack: Stack, tenant: Tenant, temporal: Client
) -> None:
    account = await funded_account(tenant, 100_000)
    response = await create(tenant.partner, schedule_body(account["id"], interval=7200))
    assert response.status_code == 201, response.text
    schedule_id = response.json()["id"]
    nominal = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    # two runs for one nominal time (a retried run; a trigger racing the spec's own run)
    results = [
        await temporal.execute_workflow(
            ScheduledPaymentRunWorkflow.run,
            ScheduleRunInput(schedule_id, nominal.isoformat()),
            id=f"{schedule_id}-test-{attempt}",
            task_queue=stack.settings.temporal.task_queue,
        )
        for attempt in range(2)
    ]
    payment_id = run_payment_id(schedule_id, nominal)
    assert [result.payment_id for result in results] == [payment_id, payment_id]
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        count = (
            await conn.execute(
                select(func.count())
                .select_from(payments)
                .where(payments.c.schedule_id == schedule_id)
            )
        ).scalar_one()
    await dispose_engines()
    assert count == 1


async def test_pause_resume_and_delete(tenant: Tenant, temporal: Client) -> None:
    account = await funded_account(tenant, 100_000)
    calendar = {"day_of_week": ["mon", "thu"], "hour": 9, "timezone": "Europe/Berlin"}
    response = await create(
        tenant.partner,
        {**schedule_body(account["id"], calendar=calendar), "business_day_convention": "following"},
    )
    assert response.status_code == 201, response.text
    schedule_id = response.json()["id"]
    handle = temporal.get_schedule_handle(schedule_id)
    assert (await handle.describe()).schedule.spec.time_zone_name == "Europe/Berlin"

    paused = await tenant.partner.post(f"/v1/payment-schedules/{schedule_id}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    assert (await handle.describe()).schedule.state.paused

    resumed = await tenant.partner.post(f"/v1/payment-schedules/{schedule_id}/resume")
    assert resumed.json()["status"] == "active"
    assert not (await handle.describe()).schedule.state.paused

    deleted = await tenant.partner.delete(f"/v1/payment-schedules/{schedule_id}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["status"] == "deleted"
    with pytest.raises(RPCError):
        await handle.describe()
    again = await tenant.partner.post(f"/v1/payment-schedules/{schedule_id}/resume")
    assert again.status_code == 409 and again.json()["code"] == "payment_schedule_deleted"
    got = await tenant.partner.get(f"/v1/payment-schedules/{schedule_id}")
    assert got.json()["status"] == "deleted"


async def test_bad_schedules_are_refused_and_create_nothing(tenant: Tenant) -> None:
    account = await funded_account(tenant, 0)
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    cases: list[tuple[dict[str, Any], str]] = [
        (schedule_body(account["id"], interval="PT5M"), "schedule_rule_invalid"),
        (schedule_body(account["id"], interval=60), "schedule_rule_invalid"),
        # months have no fixed length: a calendar rule says "the 1st of every month"
        (schedule_body(account["id"], interval="P1M"), "schedule_rule_invalid"),
        (schedule_body(account["id"], interval="1 hour"), "validation_error"),
        (
            {**schedule_body(account["id"]), "calendar": {"day_of_month": 1}},
            "schedule_rule_invalid",
        ),
        ({"payment": payment_body(account["id"])}, "schedule_rule_invalid"),
        (
            schedule_body(account["id"], calendar={"day_of_month": 1, "timezone": "Mars/Olympus"}),
            "schedule_rule_invalid",
        ),
        (schedule_body(account["id"], calendar={"day_of_month": 31}), "validation_error"),
        ({**schedule_body(account["id"]), "start_at": past}, "execute_at_in_past"),
        (
            {
                **schedule_body(account["id"]),
                "end_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            },
            "schedule_rule_invalid",
        ),
        (
            {
                "payment": payment_body(account["id"], iban="DE00000000000000000000"),
                "interval": 3600,
            },
            "invalid_iban",
        ),
        (
            {"payment": {**payment_body(account["id"]), "execute_at": past}, "interval": 3600},
            "validation_error",
        ),
    ]
    for body, code in cases:
        response = await create(tenant.partner, body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["code"] == code, (body, response.text)
    listed = await tenant.partner.get("/v1/payment-schedules")
    assert listed.json()["data"] == []


async def test_a_tenant_never_sees_another_tenants_schedule(stack: Stack, tenant: Tenant) -> None:
    account = await funded_account(tenant, 0)
    response = await create(tenant.partner, schedule_body(account["id"]))
    assert response.status_code == 201, response.text
    schedule_id = response.json()["id"]
    other_key, _ops = await make_keys(stack, f"ten_{uuid.uuid4().hex[:12]}")
    async with httpx.AsyncClient(
        base_url=stack.settings.api.url, headers={"Authorization": f"Bearer {other_key}"}
    ) as other:
        assert (await other.get(f"/v1/payment-schedules/{schedule_id}")).status_code == 404
        paused = await other.post(f"/v1/payment-schedules/{schedule_id}/pause")
        assert paused.status_code == 404
        assert paused.json()["code"] == "payment_schedule_not_found"
        assert (await other.delete(f"/v1/payment-schedules/{schedule_id}")).status_code == 404
        assert (await other.get("/v1/payment-schedules")).json()["data"] == []
    mine = await tenant.partner.get(f"/v1/payment-schedules/{schedule_id}")
    assert mine.json()["status"] == "active"


async def test_a_preceding_schedules_first_run_on_a_closed_day_is_paid_ahead(
    tenant: Tenant,
) -> None:
    account = await funded_account(tenant, 100_000)
    # every Saturday: never a SEPA business day, so each run pays on the Friday before it
    saturdays = {"day_of_week": ["sat"], "hour": 9, "timezone": "UTC"}
    response = await create(
        tenant.partner,
        {
            **schedule_body(account["id"], calendar=saturdays),
            "business_day_convention": "preceding",
        },
    )
    assert response.status_code == 201, response.text
    schedule_id = response.json()["id"]
    now = datetime.now(UTC)
    days = (5 - now.weekday()) % 7  # to the next Saturday (today's, if before 09:00)
    saturday = (now + timedelta(days=days)).replace(hour=9, minute=0, second=0, microsecond=0)
    if saturday <= now:
        saturday += timedelta(days=7)
    [payment] = await schedule_payments(tenant.partner, schedule_id)
    assert payment["id"] == run_payment_id(schedule_id, saturday)
    # the Friday, or the day before a closed Friday (Good Friday, Christmas)
    day = adjust_to_business_day(saturday.date(), "sepa", "preceding")
    executes = datetime.combine(day, saturday.timetz())
    if executes > now:  # still ahead: it waits for that day
        assert payment["status"] == "scheduled"
        assert datetime.fromisoformat(payment["execute_at"]) == executes


async def test_erasure_waits_for_the_customers_schedules_then_blanks_their_creditor(
    tenant: Tenant,
) -> None:
    account = await funded_account(tenant, 0)
    body = schedule_body(account["id"])
    body["payment"]["creditor"]["name"] = "Ottilie Quastenflosser"
    response = await create(tenant.partner, body)
    assert response.status_code == 201, response.text
    schedule_id = response.json()["id"]
    erase = f"/v1/customers/{account['customer_id']}/erase"
    refused = await tenant.ops.post(erase, json={"reason": "DSR-1"})
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "customer_has_open_payments"
    assert "payment schedule" in refused.json()["detail"]

    deleted = await tenant.partner.delete(f"/v1/payment-schedules/{schedule_id}")
    assert deleted.status_code == 200, deleted.text
    erased = await tenant.ops.post(erase, json={"reason": "DSR-1"})
    assert erased.status_code == 200, erased.text
    shown = (await tenant.partner.get(f"/v1/payment-schedules/{schedule_id}")).json()
    assert shown["payment"]["creditor"] == {"name": "[erased]", "country": "DE"}
    assert shown["payment"]["amount"] == 1_000
