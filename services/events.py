"""Events (what a tenant's webhooks announce) and the start of their deliveries.

An event is a row written in the transaction of the change it announces; each enabled
endpoint of the tenant that receives its type then gets one delivery workflow
(`WebhookDeliveryWorkflow`, retried with backoff), whose id derives from the event and the
endpoint, so starting it again is harmless.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, any_, literal, or_, select
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from kernel.settings import Settings
from kernel.tables import events, webhook_endpoints
from workflows.models import DeliveryInput
from workflows.webhook_delivery import WebhookDeliveryWorkflow, delivery_workflow_id


def new_secret() -> str:
    """A fresh endpoint secret (192 random bits)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def payment_event_id(payment_id: str, seq: int) -> str:
    """The id of the event for a payment's `seq`-th status (stable, so writes are idempotent)."""
    return f"evt_{payment_id.removeprefix('pay_')}_{seq:02d}"


def payment_status_event_data(
    payment: Any, status: str, failure: dict[str, Any] | None
) -> dict[str, Any]:
    """The body of a `payment.<status>` event, from a `payments` row."""
    return {
        "payment_id": payment.id,
        "status": status,
        "account_id": payment.account_id,
        "amount": payment.amount,
        "currency": payment.currency,
        "rail": payment.rail,
        "failure": failure,
    }


def event_insert(
    *,
    event_id: str,
    tenant_id: str,
    type: str,
    data: dict[str, Any],
    at: datetime,
    payment_id: str | None = None,
) -> Insert:
    """The statement writing an event (nothing if an event with this id exists)."""
    return (
        insert(events)
        .values(
            id=event_id,
            tenant_id=tenant_id,
            type=type,
            payment_id=payment_id,
            data=data,
            created_at=at,
        )
        .on_conflict_do_nothing()
    )


async def insert_event(
    conn: AsyncConnection,
    *,
    event_id: str,
    tenant_id: str,
    type: str,
    data: dict[str, Any],
    at: datetime,
    payment_id: str | None = None,
) -> None:
    """Write an event (no-op if an event with this id exists: ids are derived, so a retry
    writes nothing new)."""
    await conn.execute(
        event_insert(
            event_id=event_id,
            tenant_id=tenant_id,
            type=type,
            data=data,
            at=at,
            payment_id=payment_id,
        )
    )


async def insert_event_for_endpoints(
    conn: AsyncConnection, written: Insert, tenant_id: str, event_type: str
) -> list[str]:
    """Run `written` (an `event_insert`) and return the endpoints that receive the event (as
    `enabled_endpoints`), in one statement: one round trip instead of two."""
    # PostgreSQL runs a data-modifying CTE exactly once, whether the query reads it or not
    query = endpoints_query(tenant_id, event_type).add_cte(written.cte("written_event"))
    return list((await conn.execute(query)).scalars().all())


def event_type_patterns(event_type: str) -> list[str]:
    """The filter entries that select `event_type`: itself and its family's wildcard
    (`payment.settled`, `payment.*`)."""
    family, _, _ = event_type.partition(".")
    return [event_type, f"{family}.*"]


def endpoints_query(tenant_id: str, event_type: str) -> Select[Any]:
    """The ids of the tenant's enabled webhook endpoints that receive `event_type` (those
    without a filter receive every type)."""
    filters = webhook_endpoints.c.event_types
    return select(webhook_endpoints.c.id).where(
        webhook_endpoints.c.tenant_id == tenant_id,
        webhook_endpoints.c.disabled_at.is_(None),
        or_(
            filters.is_(None),
            *(literal(pattern) == any_(filters) for pattern in event_type_patterns(event_type)),
        ),
    )


async def enabled_endpoints(conn: AsyncConnection, tenant_id: str, event_type: str) -> list[str]:
    """The ids of the tenant's enabled webhook endpoints that receive `event_type`."""
    rows = await conn.execute(endpoints_query(tenant_id, event_type))
    return list(rows.scalars().all())


@dataclass(frozen=True)
class DeliveryStarter:
    """Starts delivery workflows on a Temporal client, with the process's settings."""

    client: Client
    settings: Settings

    async def start(self, event_id: str, endpoint_ids: list[str]) -> None:
        """Start one delivery workflow per endpoint for the event (idempotent)."""
        for endpoint_id in endpoint_ids:
            # a delivery that already ran is neither repeated nor restarted
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await self.client.start_workflow(
                    WebhookDeliveryWorkflow.run,
                    DeliveryInput(
                        event_id, endpoint_id, self.settings.webhooks.retry_initial_seconds
                    ),
                    id=delivery_workflow_id(event_id, endpoint_id),
                    task_queue=self.settings.temporal.task_queue,
                    rpc_timeout=timedelta(seconds=self.settings.api.temporal_rpc_timeout_seconds),
                    # a retried activity or API request finds the delivery already started,
                    # or already done: a healed start never delivers an event twice
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                )

    async def restart(self, engine: AsyncEngine, event_id: str) -> None:
        """Start the event's deliveries again, to the endpoints that receive it now: heals a
        unit of work whose process died between its commit and the start (those that ran
        are neither repeated nor restarted)."""
        async with engine.connect() as conn:
            event = (
                await conn.execute(
                    select(events.c.tenant_id, events.c.type).where(events.c.id == event_id)
                )
            ).first()
            if event is None:
                return
            endpoint_ids = await enabled_endpoints(conn, event.tenant_id, event.type)
        await self.start(event_id, endpoint_ids)
