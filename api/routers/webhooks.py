"""Webhook endpoints and the events they receive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from sqlalchemy import Select, func, select, update

from api.deps import AppSettings, Engine, Reader, Writer
from api.errors import ProblemError
from api.fields import EVENT_ID, EVENT_TYPE, PAYMENT_ID, WEBHOOK_ENDPOINT_ID
from api.pagination import cursor_query, page_query
from api.problems import (
    AUTHENTICATED,
    INVALID_CURSOR,
    WEBHOOK_ENDPOINT_LIMIT_REACHED,
    WEBHOOK_ENDPOINT_NOT_FOUND,
    WEBHOOK_URL_NOT_ALLOWED,
    WEBHOOK_URL_UNRESOLVABLE,
    WITH_BODY,
    WITH_PARAMETERS,
    problems,
)
from api.schemas import (
    EventList,
    EventOut,
    WebhookEndpointCreate,
    WebhookEndpointList,
    WebhookEndpointOut,
)
from kernel.tables import events, webhook_endpoints
from services.webhook_endpoints import register_endpoint, rotate_secret

router = APIRouter(tags=["webhooks"])


def endpoint_out(row: Any, *, with_secret: bool = False) -> WebhookEndpointOut:
    """Render an endpoint (its secret only right after creation)."""
    return WebhookEndpointOut(
        id=row.id,
        url=row.url,
        description=row.description,
        enabled=row.disabled_at is None,
        event_types=row.event_types,
        secret=row.secret if with_secret else None,
        previous_secret_expires_at=row.previous_secret_expires_at,
        created_at=row.created_at,
    )


@router.post(
    "/v1/webhook-endpoints",
    status_code=201,
    response_model=WebhookEndpointOut,
    responses=problems(
        AUTHENTICATED,
        WITH_BODY,
        WEBHOOK_URL_NOT_ALLOWED,
        WEBHOOK_URL_UNRESOLVABLE,
        WEBHOOK_ENDPOINT_LIMIT_REACHED,
    ),
)
async def create_endpoint(
    body: WebhookEndpointCreate, principal: Writer, engine: Engine, settings: AppSettings
) -> WebhookEndpointOut:
    """Register a URL; every payment status change is POSTed to it, signed with `secret`.

    The URL must reach outside our network (422 `webhook_url_not_allowed` for loopback,
    private, link-local... hosts, or `webhook_url_unresolvable`), and a tenant has at most
    `webhook_max_endpoints_per_tenant` enabled endpoints (409 `webhook_endpoint_limit_reached`).
    """
    row = await register_endpoint(
        engine,
        settings,
        tenant_id=principal.tenant_id,
        url=body.url,
        description=body.description,
        event_types=body.event_types,
    )
    return endpoint_out(row, with_secret=True)


@router.post(
    "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
    response_model=WebhookEndpointOut,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS, WEBHOOK_ENDPOINT_NOT_FOUND),
)
async def rotate_endpoint_secret(
    endpoint_id: Annotated[str, Path(pattern=WEBHOOK_ENDPOINT_ID)],
    principal: Writer,
    engine: Engine,
    settings: AppSettings,
) -> WebhookEndpointOut:
    """Give the endpoint a new `secret` (shown in this answer only).

    Until `previous_secret_expires_at` (`webhook_secret_rotation_overlap_seconds` from now),
    deliveries carry two signatures, one with each secret, so the receiver can switch to
    the new secret before the old one stops being used. Rotating again within that time
    ends the oldest secret at once.
    """
    async with engine.begin() as conn:
        row = await rotate_secret(
            conn, settings, tenant_id=principal.tenant_id, endpoint_id=endpoint_id
        )
    return endpoint_out(row, with_secret=True)


@router.get(
    "/v1/webhook-endpoints",
    response_model=WebhookEndpointList,
    responses=problems(AUTHENTICATED),
)
async def list_endpoints(principal: Reader, engine: Engine) -> WebhookEndpointList:
    """The tenant's endpoints (the first 100; at most `webhook_max_endpoints_per_tenant` are
    enabled at once)."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(webhook_endpoints)
                .where(webhook_endpoints.c.tenant_id == principal.tenant_id)
                .order_by(webhook_endpoints.c.id)
                .limit(100)
            )
        ).all()
    return WebhookEndpointList(data=[endpoint_out(r) for r in rows], has_more=False)


@router.delete(
    "/v1/webhook-endpoints/{endpoint_id}",
    response_model=WebhookEndpointOut,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS, WEBHOOK_ENDPOINT_NOT_FOUND),
)
async def disable_endpoint(
    endpoint_id: Annotated[str, Path(pattern=WEBHOOK_ENDPOINT_ID)],
    principal: Writer,
    engine: Engine,
) -> WebhookEndpointOut:
    """Stop deliveries to an endpoint (pending retries end without sending)."""
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                update(webhook_endpoints)
                .where(
                    webhook_endpoints.c.id == endpoint_id,
                    webhook_endpoints.c.tenant_id == principal.tenant_id,
                )
                .values(disabled_at=_now_if_enabled())
                .returning(*webhook_endpoints.c)
            )
        ).first()
    if row is None:
        raise ProblemError(404, "webhook_endpoint_not_found", f"No webhook endpoint {endpoint_id}.")
    return endpoint_out(row)


def _now_if_enabled() -> Any:
    # disabling twice keeps the first time
    return func.coalesce(webhook_endpoints.c.disabled_at, func.now())


@router.get(
    "/v1/events",
    response_model=EventList,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS, INVALID_CURSOR),
)
async def list_events(
    principal: Reader,
    engine: Engine,
    settings: AppSettings,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[str | None, Query(pattern=EVENT_ID)] = None,
    type: Annotated[str | None, Query(pattern=EVENT_TYPE, examples=["payment.settled"])] = None,
    payment_id: Annotated[str | None, Query(pattern=PAYMENT_ID)] = None,
) -> EventList:
    """Events newest first; filter by `type` (e.g. payment.settled) or `payment_id`."""
    window = event_window(settings.retention.event_seconds, datetime.now(UTC))
    async with engine.connect() as conn:
        after = None
        if starting_after is not None:
            cursor = (
                await conn.execute(
                    event_cursor_query(principal.tenant_id, starting_after, window=window)
                )
            ).scalar_one_or_none()
            if cursor is None:
                raise ProblemError(
                    422,
                    "invalid_cursor",
                    "starting_after is not an event of yours.",
                    param="starting_after",
                )
            after = (cursor, starting_after)
        query = events_page_query(
            principal.tenant_id,
            limit=limit,
            after=after,
            type=type,
            payment_id=payment_id,
            window=window,
        )
        rows = (await conn.execute(query)).all()
    return EventList(
        data=[
            EventOut(id=r.id, type=r.type, created_at=r.created_at, data=r.data)
            for r in rows[:limit]
        ],
        has_more=len(rows) > limit,
    )


# The queries of the event list, as functions so that tests/integration/test_query_plans.py
# checks the plans of exactly what runs.


# Events are kept for their retention (then purged, services/retention.py) in monthly
# partitions: the list reads only the months of that window, given as constants so that
# the plan leaves every other month out. A read over every month would plan and probe
# each month's partition, however long ago its events expired.
EventWindow = tuple[datetime, datetime]


def event_window(retention_seconds: float, now: datetime) -> EventWindow:
    """The times an event listed now may have: within its retention, and not more than a
    day ahead (another host's clock)."""
    return now - timedelta(seconds=retention_seconds), now + timedelta(days=1)


def _within(query: Select[Any], window: EventWindow | None) -> Select[Any]:
    if window is None:
        return query
    return query.where(events.c.created_at >= window[0], events.c.created_at < window[1])


def event_cursor_query(
    tenant_id: str, event_id: str, *, window: EventWindow | None = None
) -> Select[Any]:
    """The keyset position of the tenant's event a page starts after."""
    return _within(cursor_query(events, tenant_id, event_id), window)


def events_page_query(
    tenant_id: str,
    *,
    limit: int,
    after: tuple[Any, str] | None = None,
    type: str | None = None,
    payment_id: str | None = None,
    window: EventWindow | None = None,
) -> Select[Any]:
    """A page of the tenant's events, newest first, optionally by type and payment, within
    `window` (the list's: `event_window`)."""
    filters = {"type": type, "payment_id": payment_id}
    return _within(page_query(events, tenant_id, limit=limit, after=after, filters=filters), window)
