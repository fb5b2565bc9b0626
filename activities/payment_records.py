"""Persist payment status transitions so the API can read and list payments from PostgreSQL."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from payments.tables import payment_status_history, payments
from workflows.models import RecordStatusInput


class PaymentRecordActivities:
    """Writes the workflow's transitions; idempotent on (payment id, sequence number)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @activity.defn(name="record_payment_status")
    async def record_payment_status(self, change: RecordStatusInput) -> None:
        """Append to the history and move the payment row forward (never backward)."""
        at = datetime.fromisoformat(change.at)
        detail = None
        if change.failure is not None:
            detail = {"failure": {"code": change.failure.code, "message": change.failure.message}}
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
            await conn.execute(
                insert(payment_status_history)
                .values(
                    payment_id=change.payment_id,
                    seq=change.seq,
                    status=change.status,
                    at=at,
                    detail=detail,
                )
                .on_conflict_do_nothing()
            )
            await conn.execute(
                update(payments)
                .where(payments.c.id == change.payment_id, payments.c.status_seq < change.seq)
                .values(values)
            )
