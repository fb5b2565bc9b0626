"""Payment schedules (DESIGN §10, issue #19): recurring payments run by Temporal Schedules."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.deps import AppSettings, Engine, Reader, Temporal, Writer
from api.errors import ProblemError
from api.fields import EXAMPLE_SCHEDULE_ID, SCHEDULE_ID
from api.idempotency import IdempotencyKey, replayable, run_idempotently
from api.pagination import keyset_after, page_query
from api.problems import (
    AUTHENTICATED,
    IDEMPOTENT,
    INVALID_CURSOR,
    ORCHESTRATED,
    PAYMENT_CHECKS,
    PAYMENT_SCHEDULE_DELETED,
    PAYMENT_SCHEDULE_NOT_FOUND,
    SCHEDULE_RULE_INVALID,
    WITH_BODY,
    WITH_PARAMETERS,
    problems,
)
from api.routers.accounts import load_customer_account
from api.routers.payments import check_future, checked_creditor
from api.schemas import PaymentScheduleCreate, PaymentScheduleList, PaymentScheduleOut
from kernel.api_keys import Principal
from kernel.ids import derived_id
from kernel.settings import Settings
from kernel.tables import payment_schedules
from services import payment_schedules as schedules_service
from services.payment_schedules import ScheduleOrder, create_schedule

router = APIRouter(prefix="/v1/payment-schedules", tags=["payment schedules"])

ScheduleIdPath = Annotated[str, Path(pattern=SCHEDULE_ID, examples=[EXAMPLE_SCHEDULE_ID])]
# ISO 8601 durations of fixed length: weeks, days, hours, minutes, seconds (no months, whose
# length varies: a calendar rule says "the 1st of every month")
DURATION = re.compile(
    r"P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?"
)

UNIT_SECONDS = {"weeks": 604_800, "days": 86_400, "hours": 3_600, "minutes": 60, "seconds": 1}
MAX_INTERVAL_SECONDS = 366 * 86_400


def _rule_invalid(detail: str, param: str) -> ProblemError:
    return ProblemError(422, "schedule_rule_invalid", detail, param=param)


def interval_seconds(interval: int | str, minimum: int) -> int:
    """The interval in seconds (given as seconds or an ISO 8601 duration); 422
    `schedule_rule_invalid` for anything else or below `minimum`."""
    if isinstance(interval, int):
        seconds = interval
    else:
        match = DURATION.fullmatch(interval)
        if match is None or interval in ("P", "PT") or interval.endswith("T"):
            raise _rule_invalid(
                "interval must be seconds or an ISO 8601 duration of weeks, days, hours,"
                " minutes and seconds (e.g. PT1H, P1D, P2W).",
                "interval",
            )
        parts = {name: int(value or 0) for name, value in match.groupdict().items()}
        # integer arithmetic: a huge count of weeks is refused below, not an overflow
        seconds = sum(parts[name] * UNIT_SECONDS[name] for name in UNIT_SECONDS)
    if seconds < minimum:
        raise _rule_invalid(f"interval must be at least {minimum} seconds.", "interval")
    if seconds > MAX_INTERVAL_SECONDS:
        raise _rule_invalid(
            f"interval must be at most {MAX_INTERVAL_SECONDS} seconds (366 days).", "interval"
        )
    return seconds


def _rule(
    body: PaymentScheduleCreate, settings: Settings
) -> tuple[int | None, dict[str, Any] | None]:
    """(interval seconds, calendar) from the request; exactly one of them."""
    if (body.interval is None) == (body.calendar is None):
        raise _rule_invalid("Give exactly one of interval and calendar.", "interval")
    if body.interval is not None:
        return interval_seconds(body.interval, settings.schedules.min_interval_seconds), None
    assert body.calendar is not None
    calendar = body.calendar
    if calendar.day_of_month is not None and calendar.day_of_week is not None:
        raise _rule_invalid(
            "Give day_of_month or day_of_week (or neither: daily).", "calendar.day_of_week"
        )
    try:
        ZoneInfo(calendar.timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise _rule_invalid(
            f"calendar.timezone {calendar.timezone!r} is not an IANA time zone.",
            "calendar.timezone",
        ) from err
    rule = calendar.model_dump()
    if rule["day_of_week"] is not None:
        rule["day_of_week"] = sorted(set(rule["day_of_week"]))
    return None, rule


async def _create(
    engine: AsyncEngine,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    body: PaymentScheduleCreate,
    idempotency_key: str,
) -> tuple[int, dict[str, Any]]:
    interval, calendar = _rule(body, settings)
    if body.start_at is not None:
        check_future(body.start_at, settings.schedules.max_ahead_days, "start_at")
    # whole seconds: Temporal's interval grid is (and a run's payment id names its time)
    start_at = (body.start_at or datetime.now(UTC)).replace(microsecond=0)
    if body.end_at is not None and body.end_at <= start_at:
        raise _rule_invalid("end_at must be after start_at.", "end_at")
    template = body.payment
    account = await load_customer_account(engine, principal.tenant_id, template.account_id)
    if account is None:
        raise ProblemError(
            422,
            "account_not_found",
            f"No account {template.account_id}.",
            param="payment.account_id",
        )
    creditor = checked_creditor(account, template)
    row, _ = await create_schedule(
        engine,
        temporal,
        settings,
        ScheduleOrder(
            schedule_id=derived_id("psch", principal.tenant_id, idempotency_key),
            tenant_id=principal.tenant_id,
            initiated_by=principal.name,
            key_id=principal.key_id,
            template={
                "account_id": account.id,
                "customer_id": account.customer_id,
                "amount": template.amount,
                "currency": template.currency,
                "rail": template.rail,
                "creditor": creditor,
                "remittance_info": template.remittance_info,
                "metadata": template.metadata,
                "counterparty_id": template.counterparty_id,
            },
            start_at=start_at,
            business_day_convention=body.business_day_convention,
            interval_seconds=interval,
            calendar=calendar,
            end_at=body.end_at,
            reference=body.reference,
        ),
    )
    # a `preceding` schedule whose first runs fall on closed days pays them ahead of their
    # date; after the schedule committed: a retry under the same key makes them once
    await schedules_service.make_first_payments(engine, temporal, settings, row)
    return 201, schedule_out(row).model_dump(mode="json")


def schedule_out(row: Any) -> PaymentScheduleOut:
    """Render a `payment_schedules` row."""
    return PaymentScheduleOut(
        id=row.id,
        status=row.status,
        payment=row.template,
        interval_seconds=row.interval_seconds,
        calendar=row.calendar,
        start_at=row.start_at,
        end_at=row.end_at,
        business_day_convention=row.business_day_convention,
        reference=row.reference,
        created_at=row.created_at,
    )


@router.post(
    "",
    status_code=201,
    response_model=PaymentScheduleOut,
    responses=replayable(201)
    | problems(
        AUTHENTICATED,
        ORCHESTRATED,
        WITH_BODY,
        IDEMPOTENT,
        SCHEDULE_RULE_INVALID,
        PAYMENT_CHECKS,
    ),
)
async def create_payment_schedule(
    body: PaymentScheduleCreate,
    principal: Writer,
    engine: Engine,
    temporal: Temporal,
    settings: AppSettings,
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    """Pay the same payment on a schedule: every `interval`, or by a `calendar` rule, from
    `start_at` until `end_at`. A Temporal Schedule of the same id runs it; each run makes one
    payment (id derived from the schedule and the run's time), listed by
    `GET /v1/payments?schedule_id=`."""
    return await run_idempotently(
        engine,
        principal,
        idempotency_key,
        "POST /v1/payment-schedules",
        body,
        lambda: _create(engine, temporal, settings, principal, body, idempotency_key),
        takeover_after=settings.api.idempotency_takeover_seconds,
    )


async def load_schedule(engine: AsyncEngine, tenant_id: str, schedule_id: str) -> Any:
    """The tenant's schedule row (another tenant's id is not found)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(payment_schedules).where(
                    payment_schedules.c.id == schedule_id,
                    payment_schedules.c.tenant_id == tenant_id,
                )
            )
        ).first()
    if row is None:
        raise ProblemError(404, "payment_schedule_not_found", f"No payment schedule {schedule_id}.")
    return row


@router.get(
    "/{schedule_id}",
    response_model=PaymentScheduleOut,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS, PAYMENT_SCHEDULE_NOT_FOUND),
)
async def get_payment_schedule(
    schedule_id: ScheduleIdPath, principal: Reader, engine: Engine
) -> PaymentScheduleOut:
    """A payment schedule: its payment, rule and status."""
    return schedule_out(await load_schedule(engine, principal.tenant_id, schedule_id))


@router.get(
    "",
    response_model=PaymentScheduleList,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS, INVALID_CURSOR),
)
async def list_payment_schedules(
    principal: Reader,
    engine: Engine,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[str | None, Query(pattern=SCHEDULE_ID)] = None,
) -> PaymentScheduleList:
    """The tenant's payment schedules, newest first (deleted ones included, as `deleted`)."""
    async with engine.connect() as conn:
        after = await keyset_after(
            conn, payment_schedules, principal.tenant_id, starting_after, "a payment schedule"
        )
        rows = (
            await conn.execute(
                page_query(
                    payment_schedules, principal.tenant_id, limit=limit, after=after, filters={}
                )
            )
        ).all()
    return PaymentScheduleList(
        data=[schedule_out(row) for row in rows[:limit]], has_more=len(rows) > limit
    )


async def _change(
    engine: AsyncEngine, temporal: Client, principal: Principal, schedule_id: str, action: str
) -> PaymentScheduleOut:
    row = await schedules_service.change_schedule(
        engine,
        temporal,
        schedule_id,
        tenant_id=principal.tenant_id,
        action=action,
        actor=principal.name,
    )
    return schedule_out(row)


CHANGE_PROBLEMS = problems(
    AUTHENTICATED,
    ORCHESTRATED,
    WITH_PARAMETERS,
    PAYMENT_SCHEDULE_NOT_FOUND,
    PAYMENT_CHECKS,
    PAYMENT_SCHEDULE_DELETED,
)


@router.post("/{schedule_id}/pause", response_model=PaymentScheduleOut, responses=CHANGE_PROBLEMS)
async def pause_payment_schedule(
    schedule_id: ScheduleIdPath, principal: Writer, engine: Engine, temporal: Temporal
) -> PaymentScheduleOut:
    """Pause the schedule: no run until it is resumed (runs missed meanwhile are not made)."""
    return await _change(engine, temporal, principal, schedule_id, "pause")


@router.post("/{schedule_id}/resume", response_model=PaymentScheduleOut, responses=CHANGE_PROBLEMS)
async def resume_payment_schedule(
    schedule_id: ScheduleIdPath, principal: Writer, engine: Engine, temporal: Temporal
) -> PaymentScheduleOut:
    """Resume a paused schedule from its next run."""
    return await _change(engine, temporal, principal, schedule_id, "resume")


@router.delete(
    "/{schedule_id}",
    response_model=PaymentScheduleOut,
    responses=problems(AUTHENTICATED, ORCHESTRATED, WITH_PARAMETERS, PAYMENT_SCHEDULE_NOT_FOUND),
)
async def delete_payment_schedule(
    schedule_id: ScheduleIdPath, principal: Writer, engine: Engine, temporal: Temporal
) -> PaymentScheduleOut:
    """Stop the schedule for good (its Temporal Schedule is deleted); payments it made
    already are not touched (cancel a `scheduled` one with `POST /v1/payments/{id}/cancel`)."""
    return await _change(engine, temporal, principal, schedule_id, "delete")
