"""Recalls of settled payments (issue #18, DESIGN §10): the sender asks for the money back.

`request_recall` checks the payment (the tenant's, `settled`, never recalled; on ACH only an
erroneous entry, DUPL or TECH, within five banking days of settlement, as NACHA's reversal
rules allow), marks it `recall.status: requested` with its `payment.recall_requested` event
and audit record, and starts the recall workflow (workflows/recall.py) inside that unit of
work: if Temporal refuses, nothing is recorded; the workflow id derives from the payment id,
so it starts once.

`record_recall_outcome` is the workflow's last step: accepted, the payment moves to
`returned` (failure code `recalled`, reason code the recall's reason) with its
`payment.returned` event; rejected, it stays `settled` and `payment.recall_rejected` carries
the bank's reason. The status change takes the sequence number `RECALL_SEQ`, above any the
payment workflow uses, so a payment workflow still waiting out its return window never moves
the payment back.

Then the recall's workflow tells the payment's workflow (`tell_payment_recalled`), which
believes it only once `confirm_recall` finds what `record_recall_outcome` recorded: a
`recalled` signal sent by anyone else (who can reach Temporal but not the API) is refused,
audited as `recall.signal_refused`, and the payment keeps waiting for returns.
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from kernel import audit
from kernel.settings import Settings
from kernel.tables import payment_status_history, payments
from rails.business_days import is_fed_business_day
from services.errors import ConflictError, NotFoundError
from services.events import DeliveryStarter, payment_event_id, payment_status_event_data
from services.unit_of_work import UnitOfWork
from workflows.models import (
    PaymentStatus,
    RecallClaim,
    RecallConfirmation,
    RecallFundsOverdue,
    RecallInput,
    RecallOutcome,
)
from workflows.models.recall import RECALL_SEQ, recall_failure
from workflows.recall import ACCEPTED, RecallWorkflow, recall_workflow_id

RECALL_REASONS = ("DUPL", "TECH", "FRAD", "CUST")
# NACHA: a reversal corrects an erroneous entry only (a duplicate, a wrong amount or account)
ACH_REVERSAL_REASONS = ("DUPL", "TECH")
ACH_REVERSAL_BANKING_DAYS = 5


def banking_days_between(start: date, end: date) -> int:
    """Federal Reserve banking days after `start` up to and including `end`."""
    days, day = 0, start
    while day < end:
        day += timedelta(days=1)
        days += is_fed_business_day(day)
    return days


async def _settled_at(conn: AsyncConnection, payment_id: str) -> datetime | None:
    query = (
        select(payment_status_history.c.at)
        .where(
            payment_status_history.c.payment_id == payment_id,
            payment_status_history.c.status == PaymentStatus.SETTLED.value,
        )
        .order_by(payment_status_history.c.seq)
        .limit(1)
    )
    at: datetime | None = (await conn.execute(query)).scalar()
    return at


def check_recallable(row: Any, reason: str, settled_at: datetime | None, now: datetime) -> None:
    """Raise `ConflictError` unless the payment `row` may be recalled for `reason` at `now`."""
    if row.recall is not None:
        raise ConflictError("payment_already_recalled", f"Payment {row.id} was recalled already.")
    if row.status != PaymentStatus.SETTLED.value:
        raise ConflictError(
            "payment_not_recallable", f"Payment is {row.status}; only a settled one is recalled."
        )
    if row.rail != "ach":
        return
    if reason not in ACH_REVERSAL_REASONS:
        raise ConflictError(
            "recall_not_allowed",
            "An ACH reversal corrects an erroneous entry only (reason DUPL or TECH).",
        )
    settled = (settled_at or now).date()
    if banking_days_between(settled, now.date()) > ACH_REVERSAL_BANKING_DAYS:
        raise ConflictError(
            "recall_not_allowed",
            f"An ACH reversal must follow settlement within {ACH_REVERSAL_BANKING_DAYS} "
            "banking days.",
        )


async def request_recall(
    engine: AsyncEngine,
    temporal: Client,
    settings: Settings,
    payment_id: str,
    *,
    tenant_id: str,
    actor: str,
    reason: str,
    note: str = "",
) -> None:
    """Record the recall and start its workflow; `NotFoundError` for no such payment of the
    tenant, `ConflictError` when it cannot be recalled (nothing is then recorded)."""
    now = datetime.now(UTC)
    async with UnitOfWork(engine, DeliveryStarter(temporal, settings)) as uow:
        conn = uow.conn
        row = (
            await conn.execute(
                select(payments)
                .where(payments.c.id == payment_id, payments.c.tenant_id == tenant_id)
                .with_for_update()
            )
        ).first()
        if row is None:
            raise NotFoundError("payment_not_found", f"No payment {payment_id}.")
        check_recallable(row, reason, await _settled_at(conn, payment_id), now)
        recall = {
            "status": "requested",
            "reason": reason,
            "note": note,
            "requested_at": now.isoformat(),
        }
        await conn.execute(
            update(payments).where(payments.c.id == payment_id).values(recall=recall)
        )
        await uow.event(
            event_id=f"{payment_event_id(payment_id, 0)}_recall_requested",
            tenant_id=tenant_id,
            type="payment.recall_requested",
            data={**payment_status_event_data(row, row.status, None), "recall": recall},
            at=now,
            payment_id=payment_id,
        )
        uow.audit(
            actor=actor,
            action="payment.recall_requested",
            subject=payment_id,
            tenant_id=tenant_id,
            detail={"reason": reason, "note": note},
            idempotency_key=f"{payment_id}:recall_requested",
        )
        request = RecallInput(
            payment_id,
            row.rail,
            reason,
            row.account_id,
            row.amount,
            row.currency,
            answer_deadline_seconds=settings.sepa.recall_answer_deadline_seconds,
            funds_deadline_seconds=settings.sepa.recall_funds_deadline_seconds,
            reversal_window_seconds=settings.ach.reversal_return_window_seconds,
        )
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await temporal.start_workflow(
                RecallWorkflow.run,
                request,
                id=recall_workflow_id(payment_id),
                task_queue=settings.temporal.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )


async def record_recall_outcome(
    engine: AsyncEngine, deliveries: DeliveryStarter, outcome: RecallOutcome
) -> None:
    """Record how the recall ended, with its event and audit record (idempotent)."""
    at = datetime.fromisoformat(outcome.answered_at)
    async with UnitOfWork(engine, deliveries) as uow:
        conn = uow.conn
        row = (
            await conn.execute(
                select(payments).where(payments.c.id == outcome.payment_id).with_for_update()
            )
        ).one()
        recall = dict(row.recall or {})
        if recall.get("status") not in (None, "requested"):
            return  # recorded already (a retried activity)
        recall.update(
            status=outcome.status,
            answered_at=outcome.answered_at,
            answer_reason=outcome.answer_reason,
        )
        values: dict[str, object] = {"recall": recall}
        if outcome.status == ACCEPTED:
            failure = dataclasses.asdict(recall_failure(outcome.reason))
            values.update(
                status=PaymentStatus.RETURNED.value,
                status_seq=RECALL_SEQ,
                updated_at=at,
                failure_code=failure["code"],
                failure_message=failure["message"],
                failure_reason=outcome.reason,
            )
            await conn.execute(
                payment_status_history.insert().values(
                    payment_id=row.id,
                    seq=RECALL_SEQ,
                    status=PaymentStatus.RETURNED.value,
                    at=at,
                    detail={"failure": failure},
                )
            )
            event_type = f"payment.{PaymentStatus.RETURNED.value}"
            data = payment_status_event_data(row, PaymentStatus.RETURNED.value, failure)
            event_id = payment_event_id(row.id, RECALL_SEQ)
        else:
            event_type = "payment.recall_rejected"
            data = payment_status_event_data(row, row.status, None)
            event_id = f"{payment_event_id(row.id, 0)}_recall_rejected"
        await conn.execute(update(payments).where(payments.c.id == row.id).values(values))
        await uow.event(
            event_id=event_id,
            tenant_id=row.tenant_id,
            type=event_type,
            data={**data, "recall": recall},
            at=at,
            payment_id=row.id,
        )
        uow.audit(
            actor="payments",
            action=f"payment.recall_{outcome.status}",
            subject=row.id,
            tenant_id=row.tenant_id,
            detail={"reason": outcome.reason, "answer_reason": outcome.answer_reason},
            idempotency_key=f"{row.id}:recall_{outcome.status}",
        )


async def record_recall_funds_overdue(
    engine: AsyncEngine, deliveries: DeliveryStarter, overdue: RecallFundsOverdue
) -> None:
    """Mark a recall the bank accepted whose funds have not come (`recall.funds_overdue_at`),
    with an event and an audit record, once: ops chase the bank; the funds, when they come,
    still end the payment `returned`."""
    async with UnitOfWork(engine, deliveries) as uow:
        conn = uow.conn
        row = (
            await conn.execute(
                select(payments).where(payments.c.id == overdue.payment_id).with_for_update()
            )
        ).one()
        recall = dict(row.recall or {})
        if recall.get("status") != "requested" or recall.get("funds_overdue_at"):
            return  # answered meanwhile, or marked already (a retried activity)
        recall["funds_overdue_at"] = overdue.since
        await conn.execute(update(payments).where(payments.c.id == row.id).values(recall=recall))
        await uow.event(
            event_id=f"{payment_event_id(row.id, 0)}_recall_funds_overdue",
            tenant_id=row.tenant_id,
            type="payment.recall_funds_overdue",
            data={**payment_status_event_data(row, row.status, None), "recall": recall},
            at=datetime.fromisoformat(overdue.since),
            payment_id=row.id,
        )
        uow.audit(
            actor="payments",
            action="payment.recall_funds_overdue",
            subject=row.id,
            tenant_id=row.tenant_id,
            detail={"reason": recall.get("reason"), "since": overdue.since},
            idempotency_key=f"{row.id}:recall_funds_overdue",
        )


def claim_refusal(row: Any, tenant_id: str) -> str:
    """Why the database does not bear out a claim that the payment `row` (None: no such
    payment) was recalled; "" when it does: an accepted recall of the tenant's payment, which
    its unit of work moved to `returned`."""
    if row is None:
        return "payment_not_found"
    if row.tenant_id != tenant_id:
        return "other_tenant"
    recall = row.recall or {}
    if not recall:
        return "no_recall"
    if recall.get("status") != ACCEPTED:
        return f"recall_{recall.get('status') or 'unknown'}"
    if row.status != PaymentStatus.RETURNED.value:
        return f"payment_{row.status}"
    return ""


async def confirm_recall(
    engine: AsyncEngine, claim: RecallClaim, *, idempotency_key: str
) -> RecallConfirmation:
    """Whether the database holds the accepted recall a payment workflow's `recalled` signal
    claims (see `claim_refusal`); refused, the claim is audited once per `idempotency_key`
    (`recall.signal_refused`: someone reached Temporal without going through the API)."""
    query = select(payments.c.tenant_id, payments.c.status, payments.c.recall).where(
        payments.c.id == claim.payment_id
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    refusal = claim_refusal(row, claim.tenant_id)
    if row is not None and not refusal:
        recall = row.recall
        return RecallConfirmation(
            True, reason=str(recall.get("reason") or ""), answered_at=str(recall["answered_at"])
        )
    await audit.append(
        engine,
        actor="payments",
        action="recall.signal_refused",
        subject=claim.payment_id,
        tenant_id=claim.tenant_id or None,
        detail={
            "refusal": refusal,
            "claimed_payment_id": claim.claim.payment_id,
            "claimed_status": claim.claim.status,
            "claimed_reason": claim.claim.reason,
            "claimed_answered_at": claim.claim.answered_at,
        },
        idempotency_key=idempotency_key,
    )
    return RecallConfirmation(False, refusal=refusal)


async def tell_payment_recalled(temporal: Client, outcome: RecallOutcome) -> bool:
    """Signal the payment's workflow `recalled`; False when it is closed or was never found
    (done: nothing left to tell). Any other failure raises, and the activity is retried."""
    handle = temporal.get_workflow_handle(outcome.payment_id)
    try:
        await handle.signal("recalled", outcome)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        return False
    return True
