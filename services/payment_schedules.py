"""Payment schedules (issue #19 item 4, DESIGN §10): recurring payments run by Temporal
Schedules.

A schedule (`psch_…`, derived from the tenant and the Idempotency-Key) is a row of
`payment_schedules` (the validated payment template, the rule, start and end, the
business-day convention) and a Temporal Schedule of the same id, created in the row's
transaction: if Temporal refuses, nothing of the schedule exists. Each run of the Temporal
Schedule starts `ScheduledPaymentRun` (workflows/scheduled_payment.py), whose activity calls
`make_scheduled_payment` here: one payment through `initiate_payment`, as `POST /v1/payments`
makes it, with an id derived from the schedule id and the run's nominal time, so a retried
run, or two runs for the same nominal time, make one payment.

A nominal date that is not a business day of the template's rail (the Fed's calendar for
ACH, TARGET2's for SEPA) is moved by the convention: `following` makes a `scheduled` payment
executing on the next business day at the same local time; `preceding` pays on the business
day before, which may come before the run itself: each run of a `preceding` schedule also
makes the payments of the later runs that pay before the next run (`runs_paid_now`), and the
schedule's creation those that pay before its first run (`first_runs_paid_at_creation`),
executing on their preceding business day; `none` pays on the nominal date.

A run pays only for one of the schedule's own nominal times (`run_refusal`): on its rule
(the interval's grid from `start_at`, or the calendar's days at its local time in its time
zone), between `start_at` and `end_at`, not ahead of now, and not while the schedule was
paused (`paused_periods`, opened by a pause and closed by its resume). Anyone who can start a
workflow could otherwise start `ScheduledPaymentRun` with any time, and a manual trigger of
the Temporal Schedule runs at the trigger's time: each distinct time would pay the tenant's
template again. Such a run ends `refused`, with an audit record (`payment_schedule.
run_refused`), no payment and no hold.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import null, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError, RPCStatusCode

from kernel import audit
from kernel.ids import derived_id
from kernel.settings import Settings
from kernel.tables import payment_schedules
from rails.business_days import adjust_to_business_day
from services.errors import ConflictError, NotFoundError, ServiceError
from services.payments import PaymentOrder, initiate_payment
from services.unit_of_work import UnitOfWork
from workflows import search_attributes as sa
from workflows.models import ScheduledPaymentResult, ScheduleRunInput
from workflows.scheduled_payment import ScheduledPaymentRunWorkflow

ACTIVE = "active"
PAUSED = "paused"
DELETED = "deleted"
# how far `occurrences_after` looks at most (a schedule's runs are never further apart)
OCCURRENCE_HORIZON = timedelta(days=400)
# a run's nominal time may be this far ahead of the worker's clock (Temporal's and the
# worker's clocks differ a little); further ahead, it is no run the Schedule started
NOMINAL_CLOCK_SKEW = timedelta(minutes=1)
# Temporal's day_of_week numbering (0 = Sunday), by the API's names
WEEKDAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


@dataclass(frozen=True)
class ScheduleOrder:
    """A validated payment schedule: who made it, the payment template and the rule.

    `template` holds what each run's payment is made of (account_id, customer_id, amount,
    currency, rail, creditor, remittance_info, metadata, counterparty_id); `calendar` holds
    `day_of_month` or `day_of_week` (or neither: daily), `hour`, `minute`, `timezone`.
    """

    schedule_id: str
    tenant_id: str
    initiated_by: str
    key_id: str
    template: dict[str, Any]
    start_at: datetime
    business_day_convention: str
    interval_seconds: int | None = None
    calendar: dict[str, Any] | None = None
    end_at: datetime | None = None
    reference: str | None = None


def schedule_spec(row: Any) -> ScheduleSpec:
    """When the Temporal Schedule runs: the interval (aligned on `start_at`) or the calendar
    rule in its time zone, between `start_at` and `end_at`."""
    if row.interval_seconds is not None:
        every = timedelta(seconds=row.interval_seconds)
        # Temporal counts intervals from the epoch: the offset puts a run at start_at itself
        offset = timedelta(seconds=int(row.start_at.timestamp()) % row.interval_seconds)
        return ScheduleSpec(
            intervals=[ScheduleIntervalSpec(every=every, offset=offset)],
            start_at=row.start_at,
            end_at=row.end_at,
        )
    rule = row.calendar
    calendar = ScheduleCalendarSpec(
        second=[ScheduleRange(0)],
        minute=[ScheduleRange(rule["minute"])],
        hour=[ScheduleRange(rule["hour"])],
    )
    if rule.get("day_of_month") is not None:
        calendar = ScheduleCalendarSpec(
            second=calendar.second,
            minute=calendar.minute,
            hour=calendar.hour,
            day_of_month=[ScheduleRange(rule["day_of_month"])],
        )
    elif rule.get("day_of_week"):
        calendar = ScheduleCalendarSpec(
            second=calendar.second,
            minute=calendar.minute,
            hour=calendar.hour,
            day_of_week=[ScheduleRange(WEEKDAYS[day]) for day in rule["day_of_week"]],
        )
    return ScheduleSpec(
        calendars=[calendar],
        start_at=row.start_at,
        end_at=row.end_at,
        time_zone_name=rule["timezone"],
    )


def temporal_schedule(settings: Settings, row: Any) -> Schedule:
    """The Temporal Schedule that runs the payment schedule `row`."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ScheduledPaymentRunWorkflow.run,
            ScheduleRunInput(row.id),
            # Temporal appends each run's nominal time to this id
            id=f"{row.id}-run",
            task_queue=settings.temporal.task_queue,
        ),
        spec=schedule_spec(row),
        # runs are independent (each its own nominal time and payment): none waits for
        # another, and a manual trigger is never swallowed by a run still going
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.ALLOW_ALL),
        state=ScheduleState(note=f"payment schedule of {row.tenant_id}"),
    )


async def create_schedule(
    engine: AsyncEngine, temporal: Client, settings: Settings, order: ScheduleOrder
) -> tuple[Any, bool]:
    """Store the schedule and create its Temporal Schedule; returns (row, first time). Safe
    to re-run with the same order (the id derives from the idempotency key)."""
    async with UnitOfWork(engine) as uow:
        row = (
            await uow.conn.execute(
                insert(payment_schedules)
                .values(
                    id=order.schedule_id,
                    tenant_id=order.tenant_id,
                    status=ACTIVE,
                    template=order.template,
                    interval_seconds=order.interval_seconds,
                    # SQL NULL, not JSON null: the table checks one rule is given
                    calendar=order.calendar if order.calendar is not None else null(),
                    start_at=order.start_at,
                    end_at=order.end_at,
                    business_day_convention=order.business_day_convention,
                    reference=order.reference,
                    initiated_by=order.initiated_by,
                    key_id=order.key_id,
                )
                .on_conflict_do_nothing()
                .returning(*payment_schedules.c)
            )
        ).first()
        first_time = row is not None
        if row is None:  # a re-run after a crash: the schedule is there
            row = (
                await uow.conn.execute(
                    select(payment_schedules).where(payment_schedules.c.id == order.schedule_id)
                )
            ).one()
            return row, False
        # inside the transaction: if Temporal refuses, nothing of the schedule exists
        with contextlib.suppress(ScheduleAlreadyRunningError):
            await temporal.create_schedule(
                row.id,
                temporal_schedule(settings, row),
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(sa.TENANT_ID, row.tenant_id)]
                ),
                rpc_timeout=timedelta(seconds=settings.api.temporal_rpc_timeout_seconds),
            )
        uow.audit(
            actor=order.initiated_by,
            action="payment_schedule.created",
            subject=order.schedule_id,
            tenant_id=order.tenant_id,
            detail={
                "key_id": order.key_id,
                "account_id": order.template["account_id"],
                "amount": order.template["amount"],
                "currency": order.template["currency"],
                "rail": order.template["rail"],
                "interval_seconds": order.interval_seconds,
                "calendar": order.calendar,
            },
            idempotency_key=f"{order.schedule_id}:created",
        )
    return row, first_time


async def change_schedule(
    engine: AsyncEngine,
    temporal: Client,
    schedule_id: str,
    *,
    tenant_id: str,
    action: str,
    actor: str,
) -> Any:
    """`pause`, `resume` or `delete` the tenant's schedule (row and Temporal Schedule in one
    transaction); returns the row as it is now. Deleting a deleted schedule changes nothing;
    pausing or resuming it is a conflict."""
    async with UnitOfWork(engine) as uow:
        row = (
            await uow.conn.execute(
                select(payment_schedules)
                .where(
                    payment_schedules.c.id == schedule_id,
                    payment_schedules.c.tenant_id == tenant_id,
                )
                .with_for_update()
            )
        ).first()
        if row is None:
            raise NotFoundError("payment_schedule_not_found", f"No payment schedule {schedule_id}.")
        if row.status == DELETED:
            if action == "delete":
                return row
            raise ConflictError("payment_schedule_deleted", f"Schedule {schedule_id} was deleted.")
        status = {"pause": PAUSED, "resume": ACTIVE, "delete": DELETED}[action]
        now = datetime.now(UTC)
        row = (
            await uow.conn.execute(
                update(payment_schedules)
                .where(payment_schedules.c.id == schedule_id)
                .values(
                    status=status,
                    updated_at=now,
                    deleted_at=now if status == DELETED else None,
                    paused_periods=paused_periods_after(row, status, now),
                )
                .returning(*payment_schedules.c)
            )
        ).one()
        handle = temporal.get_schedule_handle(schedule_id)
        note = f"{action} by {actor}"
        try:
            if action == "pause":
                await handle.pause(note=note)
            elif action == "resume":
                await handle.unpause(note=note)
            else:
                await handle.delete()
        except RPCError as err:
            # a delete that reached Temporal before a crash: the re-run finds it gone
            if not (action == "delete" and err.status == RPCStatusCode.NOT_FOUND):
                raise
        uow.audit(
            actor=actor,
            action=f"payment_schedule.{action}",
            subject=schedule_id,
            tenant_id=tenant_id,
        )
    return row


def paused_periods_after(row: Any, status: str, now: datetime) -> list[dict[str, Any]]:
    """The schedule's pauses once it moves to `status` at `now`: pausing an active schedule
    opens a period, resuming (or deleting) a paused one closes it; anything else keeps them."""
    periods: list[dict[str, Any]] = [dict(period) for period in row.paused_periods]
    if status == PAUSED and row.status == ACTIVE:
        periods.append({"from": now.isoformat(), "until": None})
    elif status != PAUSED and row.status == PAUSED and periods and periods[-1]["until"] is None:
        periods[-1]["until"] = now.isoformat()
    return periods


def paused_at(row: Any, nominal: datetime) -> bool:
    """Whether the schedule was paused at `nominal`: Temporal takes no action then, so no run
    of the schedule has that nominal time."""
    for period in row.paused_periods:
        since = datetime.fromisoformat(period["from"])
        until = period["until"]
        if since <= nominal and (until is None or nominal < datetime.fromisoformat(until)):
            return True
    return False


def run_payment_id(schedule_id: str, nominal: datetime) -> str:
    """The payment of the run at `nominal`: the same for every attempt at that run."""
    return derived_id("pay", schedule_id, nominal.astimezone(UTC).isoformat())


def execution_time(row: Any, nominal: datetime) -> datetime:
    """When the run at `nominal` pays: its local time of day on the nominal date moved to a
    business day of the rail by the schedule's convention."""
    zone = ZoneInfo(row.calendar["timezone"]) if row.calendar else UTC
    local = nominal.astimezone(zone)
    day = adjust_to_business_day(local.date(), row.template["rail"], row.business_day_convention)
    return datetime.combine(day, local.time(), zone)


def occurrences_after(row: Any, nominal: datetime) -> Iterator[datetime]:
    """The schedule's own nominal times after `nominal`, in order, until its end (or a year
    ahead): on the interval's grid from `start_at`, or the calendar rule's days at its local
    time."""
    end = nominal + OCCURRENCE_HORIZON
    if row.end_at is not None:
        end = min(end, row.end_at)
    if row.interval_seconds is not None:
        step = timedelta(seconds=row.interval_seconds)
        # the grid, not `nominal` + steps: a triggered run's time is off the grid
        runs = (nominal - row.start_at) // step + 1 if nominal >= row.start_at else 0
        at = row.start_at + step * runs
        while at <= end:
            yield at
            at += step
        return
    rule = row.calendar
    zone = ZoneInfo(rule["timezone"])
    day = nominal.astimezone(zone).date()
    while True:
        day += timedelta(days=1)
        at = datetime.combine(day, time(rule["hour"], rule["minute"]), zone)
        if at > end:
            return
        if _calendar_matches(rule, day):
            yield at


def on_rule(row: Any, nominal: datetime) -> bool:
    """Whether `nominal` is one of the times the schedule's rule names (ignoring start and
    end): on the interval's whole-second grid from `start_at`, or on a day of the calendar
    rule at its hour and minute in its time zone (either reading of a local time that a
    daylight-saving change makes ambiguous or skips, as Temporal may take either)."""
    if row.interval_seconds is not None:
        # the grid `occurrences_after` and the Temporal Schedule's offset step along
        step = timedelta(seconds=row.interval_seconds)
        since: timedelta = nominal - row.start_at
        return since >= timedelta(0) and since % step == timedelta(0)
    rule = row.calendar
    zone = ZoneInfo(rule["timezone"])
    day = nominal.astimezone(zone).date()
    if not _calendar_matches(rule, day):
        return False
    at = datetime.combine(day, time(rule["hour"], rule["minute"]), zone)
    # as instants: Python never finds a time in a gap or fold equal to one in another zone
    readings = {at.astimezone(UTC), at.replace(fold=1).astimezone(UTC)}
    return nominal.astimezone(UTC) in readings


def run_refusal(row: Any, nominal: datetime, now: datetime) -> str:
    """Why the run at `nominal` is no run of the schedule `row`; "" when it is."""
    if nominal.tzinfo is None:
        return "nominal_time_without_zone"
    if nominal < row.start_at or (row.end_at is not None and nominal > row.end_at):
        return "nominal_time_outside_schedule"
    if nominal > now + NOMINAL_CLOCK_SKEW:
        return "nominal_time_ahead"
    if not on_rule(row, nominal):
        return "nominal_time_off_rule"
    if paused_at(row, nominal):
        return "nominal_time_while_paused"
    return ""


def _calendar_matches(rule: dict[str, Any], day: date) -> bool:
    if rule.get("day_of_month") is not None:
        return bool(day.day == rule["day_of_month"])
    if rule.get("day_of_week"):
        return (day.isoweekday() % 7) in {WEEKDAYS[name] for name in rule["day_of_week"]}
    return True


def _paid_before_next_run(row: Any, ahead: Iterator[datetime]) -> list[datetime]:
    """Of the runs `ahead` (in order), those that pay before the first of them: each is on a
    closed day and its business day before comes before any run that could make it. The
    days paid on never go backwards, so the first that does not is the last looked at."""
    paid: list[datetime] = []
    first: datetime | None = None
    for at in ahead:
        first = first or at
        if execution_time(row, at) >= first:
            break
        paid.append(at)
    return paid


def runs_paid_now(row: Any, nominal: datetime) -> list[datetime]:
    """The nominal times whose payments the run at `nominal` makes: its own and, for a
    `preceding` schedule, those of the later runs that pay before the next run (a run on a
    closed day pays on the business day before, which may come before any run after this
    one). Their own runs find their payments made, under the same ids."""
    if row.business_day_convention != "preceding":
        return [nominal]
    return [nominal, *_paid_before_next_run(row, occurrences_after(row, nominal))]


def first_runs_paid_at_creation(row: Any) -> list[datetime]:
    """For a `preceding` schedule, its first runs that pay before its first run (on closed
    days): no run comes before them to make their payments, so the schedule's creation does
    (the runs themselves then find them made, under the same ids)."""
    if row.business_day_convention != "preceding":
        return []
    # from the day before start_at: a calendar's run on start_at's own day counts too
    ahead = occurrences_after(row, row.start_at - timedelta(days=1))
    return _paid_before_next_run(row, (at for at in ahead if at >= row.start_at))


async def make_first_payments(
    engine: AsyncEngine, temporal: Client, settings: Settings, row: Any
) -> list[ScheduledPaymentResult]:
    """Make the payments `first_runs_paid_at_creation` names (once, whatever retries)."""
    return [
        await _make_payment(engine, temporal, settings, row, at)
        for at in first_runs_paid_at_creation(row)
    ]


async def make_scheduled_payment(
    engine: AsyncEngine, temporal: Client, settings: Settings, schedule_id: str, nominal: datetime
) -> ScheduledPaymentResult:
    """Make the payment of the schedule's run at `nominal` (once, whatever retries), and for
    a `preceding` schedule those `runs_paid_now` names; none for a schedule paused or deleted
    meanwhile, or whose payment is refused (its account closed, its counterparty disabled:
    the reason is returned, and the schedule goes on), nor for a time that is no run of the
    schedule (`run_refusal`: refused, and audited once per schedule and time)."""
    async with engine.connect() as conn:
        query = select(payment_schedules).where(payment_schedules.c.id == schedule_id)
        row = (await conn.execute(query)).first()
    if row is None or row.status != ACTIVE:
        return ScheduledPaymentResult(skipped=row.status if row is not None else "not_found")
    refusal = run_refusal(row, nominal, datetime.now(UTC))
    if refusal:
        at = nominal.astimezone(UTC).isoformat() if nominal.tzinfo else nominal.isoformat()
        await audit.append(
            engine,
            actor="payments",
            action="payment_schedule.run_refused",
            subject=schedule_id,
            tenant_id=row.tenant_id,
            detail={"nominal_time": at, "refusal": refusal},
            idempotency_key=f"{schedule_id}:run_refused:{at}",
        )
        return ScheduledPaymentResult(refused=refusal)
    results = [
        await _make_payment(engine, temporal, settings, row, at)
        for at in runs_paid_now(row, nominal)
    ]
    return results[0]


async def _make_payment(
    engine: AsyncEngine, temporal: Client, settings: Settings, row: Any, nominal: datetime
) -> ScheduledPaymentResult:
    template = row.template
    execute_at = execution_time(row, nominal)
    try:
        initiated = await initiate_payment(
            engine,
            temporal,
            settings,
            PaymentOrder(
                payment_id=run_payment_id(row.id, nominal),
                tenant_id=row.tenant_id,
                initiated_by=row.initiated_by,
                key_id=row.key_id,
                account_id=template["account_id"],
                customer_id=template["customer_id"],
                amount=template["amount"],
                currency=template["currency"],
                rail=template["rail"],
                creditor=template["creditor"],
                remittance_info=template.get("remittance_info"),
                metadata=template.get("metadata") or {},
                counterparty_id=template.get("counterparty_id"),
                # a moved date still ahead waits `scheduled`; one already here pays at once
                execute_at=execute_at if execute_at > datetime.now(UTC) else None,
                schedule_id=row.id,
            ),
        )
    except ServiceError as refused:
        return ScheduledPaymentResult(skipped=refused.code)
    return ScheduledPaymentResult(payment_id=initiated.row.id)
