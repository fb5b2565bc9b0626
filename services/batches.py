"""Payment batches (issue #19): create, start a page of items, progress, review, cancel.

A batch is created in one unit of work: the batch row, every accepted item (its validated
payment order and the id its payment will have), the `payment_batch.<status>` event, the
`payment_batch.created` audit record, and the start of the batch's workflow (id = batch id),
so a batch exists exactly when its workflow does. The batch id derives from the tenant and
the Idempotency-Key, and each payment id from the batch id and the item's index: a batch
sent again, or a page of items started again after a crash, names the same payments, which
`initiate_payment` creates once (services/payments.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from kernel.ids import derived_id
from kernel.settings import ReviewSettings, Settings
from kernel.tables import payment_batch_items, payment_batches, payments
from services.errors import ConflictError, NotFoundError, ServiceError
from services.events import DeliveryStarter
from services.payments import PaymentOrder, cancel_payment, initiate_payment
from services.reviews import Reviewer, send_review, signed_review
from services.unit_of_work import UnitOfWork
from workflows import search_attributes as sa
from workflows.batch import PaymentBatchWorkflow
from workflows.models import (
    BatchCancelInput,
    BatchCancelResult,
    BatchInput,
    BatchPageResult,
    BatchProgress,
    BatchStatus,
    BatchStatusInput,
    CancelInput,
)
from workflows.models.vocabulary import CANCELABLE_STATUSES, TERMINAL_STATUSES

# an item's status before its payment exists
PENDING = "pending"
STARTED = "started"
CANCELED = "canceled"
OPEN_BATCH_STATUSES = frozenset({BatchStatus.IN_REVIEW, BatchStatus.PROCESSING})


def payment_id_of(batch_id: str, index: int) -> str:
    """The id of the payment of a batch's item: the same whenever the batch is sent again."""
    return derived_id("pay", batch_id, str(index))


def batch_event_id(batch_id: str, seq: int) -> str:
    """The id of the event of a batch's `seq`-th status (stable: writes are idempotent)."""
    return f"evt_{batch_id}_{seq:02d}"


@dataclass(frozen=True)
class BatchItem:
    """One accepted item: where it was in the request and its validated payment order."""

    index: int
    reference: str | None
    source_line: int | None
    account_id: str
    customer_id: str
    amount: int
    currency: str
    rail: str
    creditor: dict[str, Any]
    remittance_info: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    counterparty_id: str | None = None

    def request(self) -> dict[str, Any]:
        """What the item's payment is made from (stored with the item)."""
        return {
            "account_id": self.account_id,
            "customer_id": self.customer_id,
            "creditor": self.creditor,
            "remittance_info": self.remittance_info,
            "metadata": self.metadata,
            "counterparty_id": self.counterparty_id,
        }


@dataclass(frozen=True)
class BatchOrder:
    """A validated batch: who sent it, how, and its accepted items."""

    batch_id: str
    tenant_id: str
    initiated_by: str
    key_id: str
    source: str
    reference: str | None
    items: Sequence[BatchItem]
    skipped: int = 0


def totals_of(items: Sequence[BatchItem]) -> dict[str, int]:
    """The sum of the items' amounts per currency (minor units)."""
    totals: dict[str, int] = {}
    for item in items:
        totals[item.currency] = totals.get(item.currency, 0) + item.amount
    return totals


def needs_review(totals: dict[str, int], threshold: int) -> bool:
    """Four-eyes above the threshold: any currency's total above it (minor units)."""
    return any(total > threshold for total in totals.values())


def batch_event_data(batch: Any, status: str, counts: dict[str, int]) -> dict[str, Any]:
    """The body of a `payment_batch.<status>` event, from a `payment_batches` row."""
    return {
        "batch_id": batch.id,
        "status": status,
        "reference": batch.reference,
        "item_count": batch.item_count,
        "totals": batch.totals,
        "counts": counts,
    }


async def create_batch(
    engine: AsyncEngine, temporal: Client, settings: Settings, order: BatchOrder
) -> tuple[Any, bool]:
    """Store the batch and its items and start its workflow; returns (row, first time).

    Safe to re-run with the same order: the batch id derives from the idempotency key and the
    workflow id is the batch id, so a re-run finds the batch and joins its workflow.
    """
    totals = totals_of(order.items)
    review = needs_review(totals, settings.batches.review_threshold)
    status = BatchStatus.IN_REVIEW if review else BatchStatus.PROCESSING
    async with UnitOfWork(engine, DeliveryStarter(temporal, settings)) as uow:
        conn = uow.conn
        row = (
            await conn.execute(
                insert(payment_batches)
                .values(
                    id=order.batch_id,
                    tenant_id=order.tenant_id,
                    reference=order.reference,
                    source=order.source,
                    status=status.value,
                    status_seq=0,
                    initiated_by=order.initiated_by,
                    key_id=order.key_id,
                    item_count=len(order.items),
                    skipped_count=order.skipped,
                    totals=totals,
                    needs_review=review,
                )
                .on_conflict_do_nothing()
                .returning(*payment_batches.c)
            )
        ).first()
        first_time = row is not None
        if row is None:  # a re-run after a crash: the batch and its items are there
            row = (
                await conn.execute(
                    select(payment_batches).where(payment_batches.c.id == order.batch_id)
                )
            ).one()
        else:
            await _insert_items(conn, order)
        await uow.event(
            event_id=batch_event_id(row.id, 0),
            tenant_id=row.tenant_id,
            type=f"payment_batch.{row.status}",
            data=batch_event_data(row, row.status, {PENDING: row.item_count}),
            at=row.created_at,
        )
        # inside the transaction: if Temporal refuses, nothing of the batch exists
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await start_batch_workflow(temporal, settings, row)
        uow.audit(
            actor=order.initiated_by,
            action="payment_batch.created",
            subject=order.batch_id,
            tenant_id=order.tenant_id,
            detail={
                "key_id": order.key_id,
                "source": order.source,
                "items": len(order.items),
                "skipped": order.skipped,
                "totals": totals,
                "needs_review": review,
            },
            idempotency_key=f"{order.batch_id}:created",
        )
    return row, first_time


async def _insert_items(conn: AsyncConnection, order: BatchOrder) -> None:
    rows = [
        {
            "batch_id": order.batch_id,
            "idx": item.index,
            "payment_id": payment_id_of(order.batch_id, item.index),
            "reference": item.reference,
            "source_line": item.source_line,
            "amount": item.amount,
            "currency": item.currency,
            "rail": item.rail,
            "request": item.request(),
            "state": PENDING,
        }
        for item in order.items
    ]
    # executemany, a few thousand rows per round trip
    for start in range(0, len(rows), 2_000):
        await conn.execute(insert(payment_batch_items), rows[start : start + 2_000])


async def start_batch_workflow(temporal: Client, settings: Settings, batch: Any) -> None:
    """Start the batch's workflow (id = batch id; joins one already running)."""
    await temporal.start_workflow(
        PaymentBatchWorkflow.run,
        BatchInput(
            batch_id=batch.id,
            tenant_id=batch.tenant_id,
            initiated_by=batch.initiated_by,
            needs_review=batch.needs_review,
            progress_interval_seconds=settings.batches.progress_interval_seconds,
        ),
        id=batch.id,
        task_queue=settings.temporal.task_queue,
        rpc_timeout=timedelta(seconds=settings.api.temporal_rpc_timeout_seconds),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.BATCH_ID, batch.id),
                SearchAttributePair(sa.TENANT_ID, batch.tenant_id),
            ]
        ),
    )


async def start_batch_page(
    engine: AsyncEngine, temporal: Client, settings: Settings, batch_id: str
) -> BatchPageResult:
    """Make payments of the next page of the batch's pending items (in index order), each
    through `initiate_payment`, a few at a time; re-running a page creates nothing twice."""
    page_size = settings.batches.page_size
    async with engine.connect() as conn:
        batch = (
            await conn.execute(select(payment_batches).where(payment_batches.c.id == batch_id))
        ).one()
        items = (
            await conn.execute(
                select(payment_batch_items)
                .where(
                    payment_batch_items.c.batch_id == batch_id,
                    payment_batch_items.c.state == PENDING,
                )
                .order_by(payment_batch_items.c.idx)
                .limit(page_size)
            )
        ).all()
    if batch.status not in OPEN_BATCH_STATUSES:
        return BatchPageResult(started=0, more=False)
    gate = asyncio.Semaphore(settings.batches.start_concurrency)

    async def start(item: Any) -> None:
        request = item.request
        async with gate:
            await initiate_payment(
                engine,
                temporal,
                settings,
                PaymentOrder(
                    payment_id=item.payment_id,
                    tenant_id=batch.tenant_id,
                    initiated_by=batch.initiated_by,
                    key_id=batch.key_id,
                    account_id=request["account_id"],
                    customer_id=request["customer_id"],
                    amount=item.amount,
                    currency=item.currency,
                    rail=item.rail,
                    creditor=request["creditor"],
                    remittance_info=request.get("remittance_info"),
                    metadata=request.get("metadata") or {},
                    batch_id=batch_id,
                    counterparty_id=request.get("counterparty_id"),
                ),
            )

    await asyncio.gather(*(start(item) for item in items))
    if items:
        async with engine.begin() as conn:
            await conn.execute(
                update(payment_batch_items)
                .where(
                    payment_batch_items.c.batch_id == batch_id,
                    payment_batch_items.c.idx.in_([item.idx for item in items]),
                    payment_batch_items.c.state == PENDING,
                )
                .values(state=STARTED)
            )
    return BatchPageResult(started=len(items), more=len(items) == page_size)


def item_counts_query(batch_id: str) -> Select[Any, int]:
    """The batch's items by status (reads the batch's items and their payments by key: the
    batch's size, never history; tests/integration/test_query_plans.py checks the plan)."""
    status = func.coalesce(payments.c.status, payment_batch_items.c.state)
    return (
        select(status, func.count())
        .select_from(
            payment_batch_items.outerjoin(
                payments,
                (payments.c.id == payment_batch_items.c.payment_id)
                & (payment_batch_items.c.state == STARTED),
            )
        )
        .where(payment_batch_items.c.batch_id == batch_id)
        .group_by(status)
    )


async def item_counts(conn: AsyncConnection, batch_id: str) -> dict[str, int]:
    """The batch's items by status: their payment's, or `pending`/`canceled` before it."""
    rows = await conn.execute(item_counts_query(batch_id))
    return {str(name): int(count) for name, count in rows.all()}


def open_items(counts: dict[str, int]) -> int:
    """Items whose payment has not finished (or not started)."""
    finished = {str(status) for status in TERMINAL_STATUSES} | {CANCELED}
    return sum(count for name, count in counts.items() if name not in finished)


async def batch_progress(engine: AsyncEngine, batch_id: str) -> BatchProgress:
    """Where the batch's items stand (one grouped read by the batch's key)."""
    async with engine.connect() as conn:
        counts = await item_counts(conn, batch_id)
    return BatchProgress(counts=counts, open=open_items(counts))


async def record_batch_status(
    engine: AsyncEngine, deliveries: DeliveryStarter, change: BatchStatusInput
) -> None:
    """Move the batch to `change.status` (never back), with its event and, for a review or a
    cancel, its audit record; idempotent on (batch, seq)."""
    at = datetime.fromisoformat(change.at)
    values: dict[str, Any] = {"status": change.status, "status_seq": change.seq, "updated_at": at}
    if change.decision:
        values.update(
            reviewed_by=change.actor,
            review_decision=change.decision,
            review_note=change.note or None,
            reviewed_at=at,
        )
    elif change.status == BatchStatus.CANCELED:
        values["canceled_by"] = change.actor or None
    if change.status in (BatchStatus.COMPLETED, BatchStatus.CANCELED):
        values["finished_at"] = at
    async with UnitOfWork(engine, deliveries) as uow:
        await uow.conn.execute(
            update(payment_batches)
            .where(
                payment_batches.c.id == change.batch_id,
                payment_batches.c.status_seq < change.seq,
            )
            .values(values)
        )
        batch = (
            await uow.conn.execute(
                select(payment_batches).where(payment_batches.c.id == change.batch_id)
            )
        ).one()
        await uow.event(
            event_id=batch_event_id(batch.id, change.seq),
            tenant_id=batch.tenant_id,
            type=f"payment_batch.{change.status}",
            data=batch_event_data(batch, change.status, change.counts),
            at=at,
        )
        if change.decision or change.status == BatchStatus.CANCELED:
            action = (
                f"payment_batch.review.{change.decision}"
                if change.decision
                else "payment_batch.canceled"
            )
            uow.audit(
                actor=change.actor or "system",
                action=action,
                subject=batch.id,
                tenant_id=batch.tenant_id,
                detail={"note": change.note, "status": change.status, "counts": change.counts},
                idempotency_key=f"{batch.id}:{change.seq}:{action}",
            )


async def cancel_batch_items(
    engine: AsyncEngine, temporal: Client, request: BatchCancelInput
) -> BatchCancelResult:
    """Cancel the batch's items not started, and ask each of its payments that no money can
    have left yet to cancel (the others finish as they would)."""
    async with engine.begin() as conn:
        canceled = (
            await conn.execute(
                update(payment_batch_items)
                .where(
                    payment_batch_items.c.batch_id == request.batch_id,
                    payment_batch_items.c.state == PENDING,
                )
                .values(state=CANCELED)
                .returning(payment_batch_items.c.idx)
            )
        ).all()
        cancelable = (
            await conn.execute(
                select(payments.c.id)
                .join(payment_batch_items, payment_batch_items.c.payment_id == payments.c.id)
                .where(
                    payment_batch_items.c.batch_id == request.batch_id,
                    payments.c.status.in_([str(status) for status in CANCELABLE_STATUSES]),
                )
            )
        ).all()
    asked = 0
    for (payment_id,) in cancelable:
        try:
            await cancel_payment(
                engine,
                temporal,
                payment_id,
                actor=request.requested_by,
                reason=request.reason or "batch canceled",
            )
            asked += 1
        except ServiceError:
            # it moved on meanwhile (submitted, finished, or in a sanctions review that
            # decides it): it finishes as it would
            continue
    return BatchCancelResult(items_canceled=len(canceled), payments_canceled=asked)


async def batch_row(engine: AsyncEngine, batch_id: str, tenant_id: str | None) -> Any:
    """The batch (of `tenant_id` when given); `NotFoundError` when there is none."""
    query = select(payment_batches).where(payment_batches.c.id == batch_id)
    if tenant_id is not None:
        query = query.where(payment_batches.c.tenant_id == tenant_id)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        raise NotFoundError("payment_batch_not_found", f"No payment batch {batch_id}.")
    return row


async def review_batch(
    engine: AsyncEngine,
    temporal: Client,
    batch_id: str,
    *,
    decision: str,
    reviewer: Reviewer,
    settings: ReviewSettings,
    note: str = "",
    tenant_id: str | None = None,
) -> str:
    """Approve or reject a batch in review, once for all its items (four-eyes:
    `ForbiddenError` for the principal who sent it); returns the status it moves to."""
    batch = await batch_row(engine, batch_id, tenant_id)
    handle = temporal.get_workflow_handle_for(PaymentBatchWorkflow.run, batch_id)
    result = await send_review(
        handle,
        PaymentBatchWorkflow.review,
        signed_review(settings, batch_id, decision, reviewer, note),
        ConflictError("payment_batch_not_in_review", f"Payment batch is {batch.status}."),
    )
    return str(result.status)


async def cancel_batch(
    engine: AsyncEngine,
    temporal: Client,
    batch_id: str,
    *,
    actor: str,
    reason: str = "",
    tenant_id: str | None = None,
) -> None:
    """Ask the batch's workflow to cancel it (in review or processing); audited when the
    workflow records it."""
    batch = await batch_row(engine, batch_id, tenant_id)
    if batch.status not in OPEN_BATCH_STATUSES:
        raise ConflictError("payment_batch_not_cancelable", f"Payment batch is {batch.status}.")
    handle = temporal.get_workflow_handle_for(PaymentBatchWorkflow.run, batch_id)
    await handle.signal(PaymentBatchWorkflow.cancel, CancelInput(requested_by=actor, reason=reason))
