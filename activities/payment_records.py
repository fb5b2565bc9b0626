"""Persist payment status transitions for the API, and announce them as events (webhooks).

The status, its history entry, its event and, when a person's decision (review, cancel,
retry) caused it, that decision's audit record commit in one unit of work
(services/unit_of_work.py): an event or an audit record exists exactly when the status change
does. Deliveries start afterwards and are idempotent, so a retried activity neither
duplicates events, audit records nor deliveries.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Select, Update, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client

from activities.metrics import count
from kernel import audit
from kernel.settings import Settings
from kernel.tables import payment_status_history, payments
from services.events import DeliveryStarter, payment_event_id, payment_status_event_data
from services.unit_of_work import UnitOfWork
from workflows.models import EscalationInput, OpsDecision, RecordStatusInput

log = structlog.get_logger()


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
    failure: dict[str, Any] | None, reasons: list[str] | None, action_reason: str | None = None
) -> dict[str, Any] | None:
    detail: dict[str, Any] = {}
    if failure:
        detail["failure"] = failure
    if reasons:
        detail["reasons"] = reasons
    if action_reason:
        detail["action_reason"] = action_reason
    return detail or None


def _audit_decision(
    uow: UnitOfWork, payment: Any, change: RecordStatusInput, decision: OpsDecision
) -> None:
    """Audit the decision that caused `change`, with it (idempotent per transition)."""
    detail: dict[str, Any] = {**decision.detail, "status": change.status, "seq": change.seq}
    if decision.action.startswith("payment.review."):
        # what the reviewer decided about: the hits as the payment shows them
        detail["hits"] = payment.screening_hits
    uow.audit(
        actor=decision.actor,
        action=decision.action,
        subject=payment.id,
        tenant_id=payment.tenant_id,
        detail=detail,
        idempotency_key=f"{payment.id}:{change.seq}:{decision.action}",
        not_before=payment.created_at,
    )


class PaymentRecordActivities:
    """Writes the workflow's transitions; idempotent on (payment id, sequence number)."""

    def __init__(self, engine: AsyncEngine, client: Client, settings: Settings) -> None:
        self._engine = engine
        self._deliveries = DeliveryStarter(client, settings)

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
            # set in action_required, cleared by every other status
            "action_reason": change.action_reason,
        }
        if change.failure is not None:
            values.update(
                failure_code=change.failure.code,
                failure_message=change.failure.message,
                failure_reason=change.failure.reason_code,
            )
        if change.screening_hits is not None:
            values["screening_hits"] = [asdict(hit) for hit in change.screening_hits]
        history = (
            insert(payment_status_history)
            .values(
                payment_id=change.payment_id,
                seq=change.seq,
                status=change.status,
                at=at,
                detail=_history_detail(failure, change.reasons, change.action_reason),
            )
            .on_conflict_do_nothing()
        )
        # the history row, the move and the read of the payment in one statement (one round
        # trip instead of three); its parts share one snapshot, so the payment reads as it
        # was before the move, as when the read came first
        recorded = (
            payment_by_id(change.payment_id)
            .add_cte(history.cte("status_history"))
            .add_cte(status_update(change.payment_id, change.seq, values).cte("status_moved"))
        )
        async with UnitOfWork(self._engine, self._deliveries) as uow:
            conn = uow.conn
            payment = (await conn.execute(recorded)).one()
            await uow.event(
                event_id=payment_event_id(payment.id, change.seq),
                tenant_id=payment.tenant_id,
                type=f"payment.{change.status}",
                data=payment_status_event_data(payment, change.status, failure),
                at=at,
                payment_id=payment.id,
            )
            if change.decision is not None:
                _audit_decision(uow, payment, change, change.decision)
        log.info("payment status recorded", status=change.status, seq=change.seq)
        count(
            "payments_status_transitions",
            "Payment status changes",
            status=change.status,
            rail=payment.rail,
        )

    @activity.defn(name="record_review_escalation")
    async def record_review_escalation(self, request: EscalationInput) -> None:
        """A review waited too long: leave an audit record and a log line ops alert on."""
        await audit.append(
            self._engine,
            actor="payments",
            action="payment.review_escalated",
            subject=request.payment_id,
            tenant_id=await audit.payment_tenant(self._engine, request.payment_id),
            detail={"waited_seconds": request.waited_seconds, "reasons": request.reasons},
            idempotency_key=f"{request.payment_id}:review_escalated",
        )
        log.warning(
            "payment review escalated",
            payment_id=request.payment_id,
            waited_seconds=request.waited_seconds,
        )
        count("payments_review_escalations", "Reviews escalated for waiting too long")
