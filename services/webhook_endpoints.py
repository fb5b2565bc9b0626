"""Registering webhook endpoints (only URLs outside our network, a bounded number per tenant)
and rotating their secrets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kernel.ids import new_id
from kernel.settings import Settings
from kernel.tables import webhook_endpoints
from services.errors import ConflictError, InvalidRequestError, NotFoundError
from services.events import new_secret
from services.outbound_guard import (
    DestinationNotAllowed,
    DestinationUnresolvable,
    Resolver,
    system_resolver,
    vet_url,
)


async def register_endpoint(
    engine: AsyncEngine,
    settings: Settings,
    *,
    tenant_id: str,
    url: str,
    description: str | None,
    event_types: list[str] | None = None,
    resolver: Resolver = system_resolver,
) -> Any:
    """Create an endpoint (with a fresh secret) receiving `event_types` (None: every type),
    and return its row.

    Refuses a URL the outbound guard does not admit (`webhook_url_not_allowed`, or
    `webhook_url_unresolvable` when its host does not resolve) and a tenant's endpoint
    beyond `webhook_max_endpoints_per_tenant` enabled ones (`webhook_endpoint_limit_reached`).
    Deliveries check the URL again: DNS may change after registration.
    """
    # before the transaction: a slow DNS answer must not hold a database connection
    try:
        await vet_url(
            url, allow_private=settings.webhooks.allow_private_networks, resolver=resolver
        )
    except (DestinationNotAllowed, DestinationUnresolvable) as refused:
        raise InvalidRequestError(refused.code, str(refused), param="url") from None
    async with engine.begin() as conn:
        return await _insert_within_limit(
            conn,
            settings.webhooks.max_endpoints_per_tenant,
            tenant_id=tenant_id,
            url=url,
            description=description,
            event_types=sorted(set(event_types)) if event_types else None,
        )


async def _insert_within_limit(
    conn: AsyncConnection,
    limit: int,
    *,
    tenant_id: str,
    url: str,
    description: str | None,
    event_types: list[str] | None,
) -> Any:
    # two registrations at once must not both see room for one more
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"webhook_endpoints:{tenant_id}"},
    )
    enabled = (
        await conn.execute(
            select(func.count()).where(
                webhook_endpoints.c.tenant_id == tenant_id,
                webhook_endpoints.c.disabled_at.is_(None),
            )
        )
    ).scalar_one()
    if enabled >= limit:
        raise ConflictError(
            "webhook_endpoint_limit_reached",
            f"A tenant may have at most {limit} enabled webhook endpoints; disable one first.",
        )
    return (
        await conn.execute(
            webhook_endpoints.insert()
            .values(
                id=new_id("we"),
                tenant_id=tenant_id,
                url=url,
                description=description,
                event_types=event_types,
                secret=new_secret(),
            )
            .returning(*webhook_endpoints.c)
        )
    ).one()


async def rotate_secret(
    conn: AsyncConnection,
    settings: Settings,
    *,
    tenant_id: str,
    endpoint_id: str,
    overlap_seconds: float | None = None,
) -> Any:
    """Give the endpoint a new secret and return its row; the current one becomes the
    previous secret, still signed with for `overlap_seconds` (default
    `webhook_secret_rotation_overlap_seconds`).

    At most two secrets are valid at once: rotating again within the overlap drops the
    oldest right away. NotFoundError if the tenant has no such endpoint.
    """
    if overlap_seconds is None:
        overlap_seconds = settings.webhooks.secret_rotation_overlap_seconds
    overlap = timedelta(seconds=overlap_seconds)
    row = (
        await conn.execute(
            update(webhook_endpoints)
            .where(
                webhook_endpoints.c.id == endpoint_id,
                webhook_endpoints.c.tenant_id == tenant_id,
            )
            .values(
                previous_secret=webhook_endpoints.c.secret,
                previous_secret_expires_at=func.now() + overlap,
                secret=new_secret(),
            )
            .returning(*webhook_endpoints.c)
        )
    ).first()
    if row is None:
        raise NotFoundError("webhook_endpoint_not_found", f"No webhook endpoint {endpoint_id}.")
    return row
