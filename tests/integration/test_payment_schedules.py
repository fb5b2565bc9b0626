"""Payment schedules through the real API, worker and Temporal Schedules (issue #19 item 4)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select
from temporalio.client import Client, ScheduleBackfill, ScheduleOverlapPolicy
from temporalio.service import RPCError

from kernel.db import dispose_engines, get_engine
from kernel.tables import payment_schedules, payments
from kernel.temporal_client import connect
from ops.devstack import Stack
from rails.business_days import adjust_to_business_day
from services.payment_schedules import ScheduleOrder, create_schedule, run_payment_id
from tests.integration.helpers import (
    Tenant,
    audited_details,
    balances,
    funded_account,
    make_keys,
    payment_body,
)
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


async def schedule_in_the_past(
    stack: Stack,
    temporal: Client,
    template_of: dict[str, Any],
    *,
    hours_ago: int,
    end_hours_ago: int | None = None,
    minutes_ago: int = 0,
) -> Any:
    """An hourly schedule that started `hours_ago` (whole seconds), made by the service as the
    API makes one (row and Temporal Schedule), with the template and principal of the
    API-made schedule `template_of`: the API only takes schedules starting ahead, and a test
    cannot wait an hour for a second run of its rule. `minutes_ago` moves the start further
    back, so that now lies between two of the rule's times rather than on one."""
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        model = (
            await conn.execute(
                select(payment_schedules).where(payment_schedules.c.id == template_of["id"])
            )
        ).one()
    now = datetime.now(UTC).replace(microsecond=0)
    row, _ = await create_schedule(
        engine,
        temporal,
        stack.settings,
        ScheduleOrder(
            schedule_id=f"psch_{uuid.uuid4().hex[:20]}",
            tenant_id=model.tenant_id,
            initiated_by=model.initiated_by,
            key_id=model.key_id,
            template=model.template,
            start_at=now - timedelta(hours=hours_ago, minutes=minutes_ago),
            business_day_convention="none",
            interval_seconds=3600,
            end_at=None if end_hours_ago is None else now - timedelta(hours=end_hours_ago),
        ),
    )
    await dispose_engines()
    return row


async def run_at(stack: Stack, temporal: Client, schedule_id: str, nominal: datetime) -> Any:
    """Start a run straight through Temporal, naming its nominal time (as anyone who can
    start a workflow could), and answer its result."""
    return await temporal.execute_workflow(
        ScheduledPaymentRunWorkflow.run,
        ScheduleRunInput(schedule_id, nominal.isoformat()),
        id=f"{schedule_id}-direct-{uuid.uuid4().hex[:8]}",
        task_queue=stack.settings.temporal.task_queue,
    )


async def refused_runs(stack: Stack, schedule_id: str) -> list[dict[str, Any]]:
    """The details of the schedule's `payment_schedule.run_refused` audit records."""
    return await audited_details(stack, "payment_schedule.run_refused", schedule_id)


async def test_each_run_of_a_schedule_makes_one_payment(
    stack: Stack, tenant: Tenant, temporal: Client
) -> None:
    account = await funded_account(tenant, 100_000)
    response = await create(tenant.partner, schedule_body(account["id"], interval="PT1H"))
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["id"].startswith("psch_") and made["status"] == "active"
    assert made["interval_seconds"] == 3600
    # the Temporal Schedule of the same id (the Web UI's Schedules lists it)
    description = await temporal.get_schedule_handle(made["id"]).describe()
    assert description.schedule.spec.intervals[0].every == timedelta(hours=1)
    # the runs of the rule's last three hours, started by the Temporal Schedule (a backfill):
    # one payment each. Half an hour off the hour, so that the trigger below cannot fall in
    # the very second of one of the rule's times (which would be a run the rule owes)
    row = await schedule_in_the_past(stack, temporal, made, hours_ago=3, minutes_ago=30)
    handle = temporal.get_schedule_handle(row.id)
    window = ScheduleBackfill(
        start_at=row.start_at - timedelta(seconds=1),
        end_at=row.start_at + timedelta(hours=2, seconds=1),
        overlap=ScheduleOverlapPolicy.ALLOW_ALL,
    )
    await handle.backfill(window)
    paid = await wait_for_payments(tenant.partner, row.id, 3)
    runs = [row.start_at + timedelta(hours=hours) for hours in range(3)]
    assert {payment["id"] for payment in paid} == {run_payment_id(row.id, at) for at in runs}
    assert all(payment["schedule_id"] == row.id for payment in paid)
    assert all(payment["amount"] == 1_000 for payment in paid)
    # a manual trigger runs at the trigger's time, which is none of the rule's: refused
    await handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
    deadline = asyncio.get_running_loop().time() + WAIT
    while not await refused_runs(stack, row.id):
        assert asyncio.get_running_loop().time() < deadline, "the triggered run was not refused"
        await asyncio.sleep(0.5)
    [refused] = await refused_runs(stack, row.id)
    assert refused["refusal"] == "nominal_time_off_rule"
    assert len(await schedule_payments(tenant.partner, row.id)) == 3


async def test_a_run_repeated_for_the_same_nominal_time_pays_once(
    stack: Stack, tenant: Tenant, temporal: Client
) -> None:
    account = await funded_account(tenant, 100_000)
    response = await create(tenant.partner, schedule_body(account["id"], interval=7200))
    assert response.status_code == 201, response.text
    schedule_id = response.json()["id"]
    # the schedule's first run: its start (on its rule)
    nominal = datetime.fromisoformat(response.json()["start_at"])
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


async def test_a_run_started_through_temporal_pays_only_on_the_rule_and_in_the_window(
    stack: Stack, tenant: Tenant, temporal: Client
) -> None:
    account = await funded_account(tenant, 100_000)
    response = await create(tenant.partner, schedule_body(account["id"], interval="PT1H"))
    assert response.status_code == 201, response.text
    # hourly from three hours ago, ended an hour ago: runs at -3 h and -2 h (and -1 h, its end)
    row = await schedule_in_the_past(stack, temporal, response.json(), hours_ago=3, end_hours_ago=1)
    on_rule = row.start_at + timedelta(hours=1)
    refusals = {
        # between two runs: what a direct start with any time, or a trigger, names
        on_rule + timedelta(minutes=17): "nominal_time_off_rule",
        on_rule + timedelta(seconds=1): "nominal_time_off_rule",
        # on the grid, but before start_at and after end_at
        row.start_at - timedelta(hours=1): "nominal_time_outside_schedule",
        row.end_at + timedelta(hours=1): "nominal_time_outside_schedule",
    }
    for nominal, refusal in refusals.items():
        result = await run_at(stack, temporal, row.id, nominal)
        assert (result.payment_id, result.refused) == ("", refusal), nominal
    assert await schedule_payments(tenant.partner, row.id) == []
    # nothing held either: the account's money is all there
    held = await balances(tenant.partner, account["id"])
    assert (held["posted"], held["pending"], held["available"]) == (100_000, 0, 100_000)
    audited = await refused_runs(stack, row.id)
    assert sorted(detail["refusal"] for detail in audited) == sorted(refusals.values())
    # on the rule, inside the window: one payment, however often it is started
    first = await run_at(stack, temporal, row.id, on_rule)
    again = await run_at(stack, temporal, row.id, on_rule.astimezone(ZoneInfo("Asia/Tokyo")))
    assert first.payment_id == again.payment_id == run_payment_id(row.id, on_rule)
    assert first.refused == again.refused == ""
    [paid] = await schedule_payments(tenant.partner, row.id)
    assert paid["id"] == first.payment_id


async def test_a_run_for_a_time_the_schedule_was_paused_pays_nothing(
    stack: Stack, tenant: Tenant, temporal: Client
) -> None:
    account = await funded_account(tenant, 100_000)
    response = await create(tenant.partner, schedule_body(account["id"], interval="PT1H"))
    assert response.status_code == 201, response.text
    row = await schedule_in_the_past(stack, temporal, response.json(), hours_ago=3)
    paused = await tenant.partner.post(f"/v1/payment-schedules/{row.id}/pause")
    assert paused.status_code == 200, paused.text
    # the pause began two and a half hours ago, as far as the run check can tell: a test
    # cannot wait for the rule's next hour inside a pause
    began = row.start_at + timedelta(minutes=30)
    async with get_engine(stack.settings).begin() as conn:
        await conn.execute(
            payment_schedules.update()
            .where(payment_schedules.c.id == row.id)
            .values(paused_periods=[{"from": began.isoformat(), "until": None}])
        )
    await dispose_engines()
    resumed = await tenant.partner.post(f"/v1/payment-schedules/{row.id}/resume")
    assert resumed.status_code == 200, resumed.text
    async with get_engine(stack.settings).connect() as conn:
        [period] = (
            await conn.execute(
                select(payment_schedules.c.paused_periods).where(payment_schedules.c.id == row.id)
            )
        ).scalar_one()
    await dispose_engines()
    assert datetime.fromisoformat(period["from"]) == began
    assert datetime.fromisoformat(period["until"]) > began  # closed by the resume
    # an hour after the start the schedule was paused: Temporal ran nothing then
    in_pause = row.start_at + timedelta(hours=1)
    result = await run_at(stack, temporal, row.id, in_pause)
    assert (result.payment_id, result.refused) == ("", "nominal_time_while_paused")
    [audited] = await refused_runs(stack, row.id)
    assert audited["refusal"] == "nominal_time_while_paused"
    assert await schedule_payments(tenant.partner, row.id) == []
    # the run before the pause still pays, once
    before = await run_at(stack, temporal, row.id, row.start_at)
    assert (before.payment_id, before.refused) == (run_payment_id(row.id, row.start_at), "")
    [paid] = await schedule_payments(tenant.partner, row.id)
    assert paid["id"] == before.payment_id


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
