"""Payment operations shared by the API and the `payments` CLI: initiate, review, cancel,
retry.

Initiating writes the payment, its first status, its event and the `payment.initiated` audit
record in one unit of work, and starts the payment workflow inside it. A review, a cancel or a
retry is a message to the payment's workflow naming who acted; the workflow's next
transition records the effect and audits the decision in one transaction
(activities/payment_records.py), whichever door the message came through (API, CLI, or a
signal from the Temporal Web UI), so nothing here appends an audit record for them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, literal, select
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

from kernel.codec import prepare_subject
from kernel.settings import ReviewSettings, Settings
from kernel.tables import payment_status_history, payments
from services.counterparties import counterparty_creditor
from services.errors import ConflictError, NotFoundError
from services.events import DeliveryStarter, payment_event_id, payment_status_event_data
from services.retention import refuse_expired_key
from services.reviews import Reviewer, send_review, signed_review
from services.unit_of_work import UnitOfWork
from workflows import search_attributes as sa
from workflows.models import (
    CancelInput,
    Creditor,
    PaymentInput,
    PaymentStatus,
    RetryInput,
)
from workflows.models.vocabulary import CANCELABLE_STATUSES, ActionReason, Rail
from workflows.payment import PaymentWorkflow


@dataclass(frozen=True)
class PaymentOrder:
    """A validated payment request (the API checked the account, currency and creditor)."""

    payment_id: str
    tenant_id: str
    initiated_by: str
    key_id: str
    account_id: str
    customer_id: str
    amount: int
    currency: str
    rail: Rail
    creditor: dict[str, Any]
    remittance_info: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # a saved counterparty instead of `creditor`: resolved in the payment's transaction
    counterparty_id: str | None = None
    # the payment batch it is an item of (services/batches.py)
    batch_id: str | None = None
    # when to execute it (aware, in the future): `scheduled` until then (DESIGN §10)
    execute_at: datetime | None = None
    # the payment schedule whose run made it (services/payment_schedules.py)
    schedule_id: str | None = None


@dataclass(frozen=True)
class Initiated:
    """The payment row, and whether this call created it (False: a re-run found it)."""

    row: Any
    first_time: bool


def new_payment_values(
    order: PaymentOrder | PaymentInput, creditor: dict[str, Any], metadata: dict[str, Any]
) -> dict[str, Any]:
    """A payment row as it is initiated (`processing`, sequence 0), from the API's order or,
    when a restore lost the row, from its workflow's input (ops/heal.py)."""
    return {
        "id": order.payment_id,
        "tenant_id": order.tenant_id,
        "account_id": order.account_id,
        "customer_id": order.customer_id,
        "amount": order.amount,
        "currency": order.currency,
        "rail": order.rail,
        "creditor": creditor,
        "remittance_info": order.remittance_info,
        "metadata": metadata,
        "initiated_by": order.initiated_by,
        # a workflow's input does not carry them: a row the heal recreates names no counterparty
        # and no batch (its BatchId search attribute still does)
        "counterparty_id": order.counterparty_id if isinstance(order, PaymentOrder) else None,
        "batch_id": order.batch_id if isinstance(order, PaymentOrder) else None,
        "schedule_id": order.schedule_id if isinstance(order, PaymentOrder) else None,
        "execute_at": _execute_at(order),
        "status": first_status(order).value,
        "status_seq": 0,
    }


def _execute_at(order: PaymentOrder | PaymentInput) -> datetime | None:
    if isinstance(order, PaymentOrder):
        return order.execute_at
    return datetime.fromisoformat(order.execute_at) if order.execute_at else None


def first_status(order: PaymentOrder | PaymentInput) -> PaymentStatus:
    """`scheduled` for a payment with `execute_at`, else `processing`."""
    return PaymentStatus.SCHEDULED if _execute_at(order) is not None else PaymentStatus.PROCESSING


# stores the request's answer in the payment's transaction (api/idempotency.answer_in), from
# the payment row and whether this call created it
AnswerRecorder = Callable[[AsyncConnection, Any, bool], Awaitable[None]]


async def initiate_payment(
    engine: AsyncEngine,
    temporal: Client,
    settings: Settings,
    order: PaymentOrder,
    answer: AnswerRecorder | None = None,
) -> Initiated:
    """Create the payment and start its workflow; safe to re-run with the same order (the
    payment id derives from the idempotency key, and the workflow id is the payment id).

    No transaction is open while Temporal is called: the workflow is started first, then
    the payment's row, first status, event and audit record commit in one short
    transaction. If Temporal refuses, nothing was written; if the transaction does not
    commit, the workflow moves no money: its last step before the hold
    (`check_payment_limits`) waits, retried, for the row (PaymentNotCommittedError), and the
    client's retry under the same key commits it (the start joins the running workflow).
    `answer` stores the request's answer in that same transaction."""
    # what the workflow's input needs, each read a statement of its own (no transaction:
    # the one that writes the payment reads the counterparty again under its lock)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        if order.counterparty_id is not None:
            order = replace(
                order,
                creditor=await counterparty_creditor(
                    conn, order.tenant_id, order.counterparty_id, order.rail
                ),
            )
        existing = (
            await conn.execute(
                select(payments.c.id, payments.c.created_at).where(
                    payments.c.id == order.payment_id
                )
            )
        ).first()
    if existing is not None:
        # a re-run after a crash, unless it is older than its key's record is kept: a new
        # request reusing an expired key (nothing is started, emitted or audited again)
        refuse_expired_key(existing.created_at, existing.id, settings.retention.idempotency_seconds)
    with contextlib.suppress(WorkflowAlreadyStartedError):  # re-run after it finished
        await start_payment_workflow(temporal, settings, order)
    async with UnitOfWork(engine, DeliveryStarter(temporal, settings)) as uow:
        conn = uow.conn
        if order.counterparty_id is not None:
            # read again in this transaction (a disable committed before it is seen, one
            # after it waits for the payment to commit): the creditor the payment keeps for
            # ever (if it was disabled since the read above, the request fails and the
            # started workflow, finding no row, moves nothing)
            order = replace(
                order,
                creditor=await counterparty_creditor(
                    conn, order.tenant_id, order.counterparty_id, order.rail
                ),
            )
        # the payment and its first status in one statement (one round trip)
        row = (
            await conn.execute(
                payment_insert(new_payment_values(order, order.creditor, order.metadata))
            )
        ).first()
        first_time = row is not None
        if row is None:  # a re-run after a crash: the payment is there, and may have moved on
            row = (
                await conn.execute(select(payments).where(payments.c.id == order.payment_id))
            ).one()
        await uow.event(
            event_id=payment_event_id(row.id, 0),
            tenant_id=row.tenant_id,
            type=f"payment.{first_status(order).value}",
            data=payment_status_event_data(row, first_status(order).value, None),
            at=row.created_at,
            payment_id=row.id,
        )
        uow.audit(
            actor=order.initiated_by,
            action="payment.initiated",
            subject=order.payment_id,
            tenant_id=order.tenant_id,
            detail={
                "key_id": order.key_id,
                "account_id": order.account_id,
                "amount": order.amount,
                "currency": order.currency,
                "rail": order.rail,
                **({"batch_id": order.batch_id} if order.batch_id else {}),
                **({"schedule_id": order.schedule_id} if order.schedule_id else {}),
                **({"execute_at": row.execute_at.isoformat()} if row.execute_at else {}),
            },
            idempotency_key=f"{order.payment_id}:initiated",
            not_before=row.created_at,
        )
        if answer is not None:
            await answer(conn, row, first_time)
    return Initiated(row, first_time)


def payment_insert(values: dict[str, Any]) -> Select[Any]:
    """Insert a new payment (nothing if its id exists) with its first status (`processing`,
    or `scheduled` with `execute_at`) at its creation time; returns the payment row, or no
    row when it existed already."""
    inserted = (
        insert(payments).values(values).on_conflict_do_nothing().returning(*payments.c)
    ).cte("inserted_payment")
    first_status = (
        payment_status_history.insert()
        .from_select(
            ["payment_id", "seq", "status", "at"],
            select(
                inserted.c.id,
                literal(0),
                inserted.c.status,
                inserted.c.created_at,
            ),
        )
        .cte("first_status")
    )
    # PostgreSQL runs a data-modifying CTE exactly once, whether the query reads it or not
    return select(inserted).add_cte(first_status)


async def start_payment_workflow(temporal: Client, settings: Settings, order: PaymentOrder) -> None:
    """Start the payment's workflow (id = payment id; joins one already running)."""
    # the payment row is not committed yet: the codec labels the input with its tenant; and
    # the payment's data key is made here, one statement, before the start encodes with it
    await prepare_subject(settings, order.payment_id, order.tenant_id)
    attributes: list[SearchAttributePair[Any]] = [
        SearchAttributePair(sa.PAYMENT_STATUS, first_status(order).value),
        SearchAttributePair(sa.PAYMENT_RAIL, order.rail),
        SearchAttributePair(sa.TENANT_ID, order.tenant_id),
        SearchAttributePair(sa.CUSTOMER_ID, order.customer_id),
        SearchAttributePair(sa.AMOUNT_MINOR, order.amount),
        SearchAttributePair(sa.CURRENCY, order.currency),
    ]
    if order.batch_id is not None:
        # a batch's payments are one query away in the Web UI: BatchId = "bat_…"
        attributes.append(SearchAttributePair(sa.BATCH_ID, order.batch_id))
    await temporal.start_workflow(
        PaymentWorkflow.run,
        PaymentInput(
            payment_id=order.payment_id,
            tenant_id=order.tenant_id,
            account_id=order.account_id,
            customer_id=order.customer_id,
            amount=order.amount,
            currency=order.currency,
            rail=order.rail,
            creditor=Creditor(**order.creditor),
            initiated_by=order.initiated_by,
            remittance_info=order.remittance_info,
            rail_poll_interval_seconds=settings.rails.poll_interval_seconds,
            review_escalation_seconds=settings.reviews.escalation_seconds,
            return_window_seconds=settings.ach.return_window_seconds,
            sepa_return_window_seconds=settings.sepa.return_window_seconds,
            split_activity_queues=settings.worker.split_activity_queues,
            execute_at=(
                order.execute_at.astimezone(UTC).isoformat()
                if order.execute_at is not None
                else None
            ),
        ),
        id=order.payment_id,
        task_queue=settings.temporal.task_queue,
        # a hung server answers 503 (nothing was written yet) instead of holding the
        # request; a start that did reach it is joined by the retry (USE_EXISTING)
        rpc_timeout=timedelta(seconds=settings.api.temporal_rpc_timeout_seconds),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(attributes),
    )


async def payment_state(engine: AsyncEngine, payment_id: str, tenant_id: str | None) -> Any:
    """The payment's status, screening hits and action reason as the database shows them
    (by primary key); `NotFoundError` when there is no such payment (of `tenant_id`, when one
    is given: the CLI acts for every tenant)."""
    query = select(payments.c.status, payments.c.screening_hits, payments.c.action_reason).where(
        payments.c.id == payment_id
    )
    if tenant_id is not None:
        query = query.where(payments.c.tenant_id == tenant_id)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    if row is None:
        raise NotFoundError("payment_not_found", f"No payment {payment_id}.")
    return row


async def current_status(engine: AsyncEngine, payment_id: str, tenant_id: str | None) -> str:
    """The payment's status as the database shows it (see `payment_state`)."""
    return str((await payment_state(engine, payment_id, tenant_id)).status)


async def review_payment(
    engine: AsyncEngine,
    temporal: Client,
    payment_id: str,
    *,
    decision: str,
    reviewer: Reviewer,
    settings: ReviewSettings,
    note: str = "",
    tenant_id: str | None = None,
) -> str:
    """Approve (false positive) or reject a payment in review (four-eyes: `ForbiddenError`
    for its initiator); returns the status the payment moved to, audited with it."""
    status = await current_status(engine, payment_id, tenant_id)
    handle = temporal.get_workflow_handle_for(PaymentWorkflow.run, payment_id)
    result = await send_review(
        handle,
        PaymentWorkflow.review,
        signed_review(settings, payment_id, decision, reviewer, note),
        ConflictError("payment_not_in_review", f"Payment is {status}."),
    )
    return str(result.status)


async def cancel_payment(
    engine: AsyncEngine,
    temporal: Client,
    payment_id: str,
    *,
    actor: str,
    reason: str = "",
    tenant_id: str | None = None,
) -> None:
    """Ask the workflow to cancel a payment no money can leave yet (processing, in_review,
    action_required); the cancellation is audited when it takes effect.

    Refused during a sanctions review (the review decides: a rejection blocks the money) and
    once the bank paid (ledger_out_of_sync). In `action_required` with the outcome unknown,
    the workflow asks the bank first and cancels only if the bank has no record.
    """
    row = await payment_state(engine, payment_id, tenant_id)
    status = row.status
    if status not in CANCELABLE_STATUSES:
        raise ConflictError("payment_not_cancelable", f"Payment is {status}.")
    if status == PaymentStatus.IN_REVIEW and row.screening_hits:
        raise ConflictError(
            "payment_in_sanctions_review",
            "A payment held for a screening hit is decided by its review, not canceled.",
        )
    if row.action_reason == ActionReason.LEDGER_OUT_OF_SYNC:
        raise ConflictError(
            "payment_not_cancelable", "The bank paid this payment; ops retry the ledger post."
        )
    handle = temporal.get_workflow_handle_for(PaymentWorkflow.run, payment_id)
    await handle.signal(PaymentWorkflow.cancel, CancelInput(requested_by=actor, reason=reason))


async def retry_payment(
    engine: AsyncEngine,
    temporal: Client,
    payment_id: str,
    *,
    actor: str,
    note: str = "",
    tenant_id: str | None = None,
) -> None:
    """Ask the workflow to try the rail again for a payment in `action_required`; the retry
    is audited with the transition back to processing."""
    status = await current_status(engine, payment_id, tenant_id)
    if status != PaymentStatus.ACTION_REQUIRED:
        raise ConflictError("payment_not_retryable", f"Payment is {status}.")
    handle = temporal.get_workflow_handle_for(PaymentWorkflow.run, payment_id)
    await handle.signal(PaymentWorkflow.retry, RetryInput(requested_by=actor, note=note))
