"""Persist payment status transitions for the API, and announce them as events (webhooks).

The status, its history entry and its event commit in one transaction (an outbox): an event
exists exactly when the status change does. Deliveries start afterwards and are idempotent,
so a retried activity neither duplicates events nor deliveries.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Select, Update, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity
from temporalio.client import Client

from activities.metrics import count
from activities.notify import enabled_endpoints, event_id_for, start_delivery_workflows
from kernel import audit
from kernel.settings import Settings
from kernel.tables import events, payment_status_history, payments
from workflows.models import EscalationInput, RecordStatusInput

log = structlog.get_logger()


async def insert_status_event(
    conn: AsyncConnection,
    payment: Any,
    seq: int,
    status: str,
    at: datetime,
    failure: dict[str, Any] | None,
) -> str:
    """Write the event of a payment's status change (no-op if it exists); returns its id."""
    event_id = event_id_for(payment.id, seq)
    await conn.execute(
        insert(events)
        .values(
            id=event_id,
            tenant_id=payment.tenant_id,
            type=f"payment.{status}",
            payment_id=payment.id,
            data={
                "payment_id": payment.id,
                "status": status,
                "account_id": payment.account_id,
                "amount": payment.amount,
                "currency": payment.currency,
                "rail": payment.rail,
                "failure": failure,
            },
            created_at=at,
        )
        .on_conflict_do_nothing()
    )
    return event_id


def payment_by_id(payment_id: str) -> Select[Any]:
    """A payment by primary key (plans checked in tests/integration/test_query_plans.py)."""
    return select(payments).where(payments.c.id == payment_id)


def status_update(payment_id: str, seq: int, values: dict[str, object]) -> Update:
    """Move a payment to the status numbered `seq`, never back to an older one."""
    return (
        update(payments)
        .where(payments.c.id == payment_id, payments.c.status_seq < seq)
        .values(values)
    )


def _history_detail(
    failure: dict[str, Any] | None, reasons: list[str] | None
) -> dict[str, Any] | None:
    detail: dict[str, Any] = {}
    if failure:
        detail["failure"] = failure
    if reasons:
        detail["reasons"] = reasons
    return detail or None


class PaymentRecordActivities:
    """Writes the workflow's transitions; idempotent on (payment id, sequence number)."""

    def __init__(self, engine: AsyncEngine, client: Client, settings: Settings) -> None:
        self._engine = engine
        self._client = client
        self._settings = settings

    @activity.defn(name="record_payment_status")
    async def record_payment_status(self, change: RecordStatusInput) -> None:
        """Append to the history, move the payment forward (never back), emit the event."""
        at = datetime.fromisoformat(change.at)
        failure = None
        if change.failure is not None:
            failure = {
                "code": change.failure.code,
                "message": change.failure.message,
                "reason_code": change.failure.reason_code,
            }
        values: dict[str, object] = {
            "status": change.status,
            "status_seq": change.seq,
            "updated_at": at,
        }
        if change.failure is not None:
            values.update(
                failure_code=change.failure.code,
                failure_message=change.failure.message,
                failure_reason=change.failure.reason_code,
            )
        if change.screening_hits is not None:
            values["screening_hits"] = [asdict(hit) for hit in change.screening_hits]
        async with self._engine.begin() as conn:
            payment = (await conn.execute(payment_by_id(change.payment_id))).one()
            await conn.execute(
                insert(payment_status_history)
                .values(
                    payment_id=change.payment_id,
                    seq=change.seq,
                    status=change.status,
                    at=at,
                    detail=_history_detail(failure, change.reasons),
                )
                .on_conflict_do_nothing()
            )
            await conn.execute(status_update(change.payment_id, change.seq, values))
            event_id = await insert_status_event(
                conn, payment, change.seq, change.status, at, failure
            )
            endpoint_ids = await enabled_endpoints(conn, payment.tenant_id)
        log.info("payment status recorded", status=change.status, seq=change.seq)
        count(
            "payments_status_transitions",
            "Payment status changes",
            status=change.status,
            rail=payment.rail,
        )
        await start_delivery_workflows(self._client, self._settings, event_id, endpoint_ids)

    @activity.defn(name="record_review_escalation")
    async def record_review_escalation(self, request: EscalationInput) -> None:
        """A review waited too long: leave an audit record and a log line ops alert on."""
        await audit.append(
            self._engine,
            actor="payments",
            action="payment.review_escalated",
            subject=request.payment_id,
            detail={"waited_seconds": request.waited_seconds, "reasons": request.reasons},
            idempotency_key=f"{request.payment_id}:review_escalated",
        )
        log.warning(
            "payment review escalated",
            payment_id=request.payment_id,
            waited_seconds=request.waited_seconds,
        )
        count("payments_review_escalations", "Reviews escalated for waiting too long")
