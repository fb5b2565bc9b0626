"""Ops actions on payments for the `payments` CLI: find, inspect, retry, cancel, review.

They talk to PostgreSQL (what the API shows) and to Temporal (the workflow that decides),
with the same settings as every other process: no API key, the operator's infrastructure
access is the authority, and every action names its operator (four-eyes still applies).
Retry, cancel and review are the operations of services/payments.py, which the API uses too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, text
from temporalio.api.failure.v1 import Failure
from temporalio.client import Client

from kernel.codec import ERASED
from kernel.db import dispose_engines, get_engine
from kernel.settings import Settings
from kernel.tables import payment_status_history, payments
from kernel.temporal_client import connect
from services import payments as payments_service
from services.reconciliation import reconcile_now
from services.reviews import Reviewer

# the tenant under which `payments review` names its operators (four-eyes compares ids)
OPS_CLI_TENANT = "ops-cli"


@dataclass
class Timeline:
    """A payment and what happened to it."""

    payment: Any
    history: list[Any]
    activities: list[str]


async def list_payments(
    settings: Settings, *, status: str | None, older_than_minutes: float | None, limit: int
) -> list[Any]:
    """Payments newest first, optionally by status and age (e.g. stuck in review)."""
    query = payments_list_query(status=status, older_than_minutes=older_than_minutes, limit=limit)
    try:
        async with get_engine(settings).connect() as conn:
            return list((await conn.execute(query)).all())
    finally:
        await dispose_engines()


def payments_list_query(
    *, status: str | None, older_than_minutes: float | None, limit: int
) -> Select[Any]:
    """The query of `list_payments` (tests/integration/test_query_plans.py checks its plan):
    most recently updated first, across tenants (ops)."""
    query = select(payments).order_by(payments.c.updated_at.desc()).limit(limit)
    if status:
        query = query.where(payments.c.status == status)
    if older_than_minutes is not None:
        query = query.where(
            payments.c.updated_at
            # make_interval takes whole minutes only; seconds may be fractional (`--older-than
            # 0.5`), and a float bound to `mins` matched no function at all
            < func.now() - text("make_interval(secs => :s)").bindparams(s=older_than_minutes * 60.0)
        )
    return query


async def timeline(settings: Settings, payment_id: str) -> Timeline | None:
    """The payment row, its status history, and the activities its workflow ran."""
    try:
        async with get_engine(settings).connect() as conn:
            row = (await conn.execute(select(payments).where(payments.c.id == payment_id))).first()
            if row is None:
                return None
            history = list(
                (
                    await conn.execute(
                        select(payment_status_history)
                        .where(payment_status_history.c.payment_id == payment_id)
                        .order_by(payment_status_history.c.seq)
                    )
                ).all()
            )
    finally:
        await dispose_engines()
    client = await connect(settings)
    steps: list[str] = []
    async for event in client.get_workflow_handle(payment_id).fetch_history_events():
        if event.HasField("activity_task_failed_event_attributes"):
            await _decode_failure(client, event.activity_task_failed_event_attributes.failure)
        line = _describe(event)
        if line:
            when = event.event_time.ToDatetime().strftime("%H:%M:%S.%f")[:-3]
            steps.append(f"{when}  {line}")
    return Timeline(row, history, steps)


async def _decode_failure(client: Client, failure: Failure) -> None:
    """Put a failure's message back in clear: it is stored encrypted (kernel/codec.py), and
    unreadable for good once its payment's data key was shredded."""
    try:
        error = await client.data_converter.decode_failure(failure)
    except ValueError:
        failure.message = ERASED
        return
    failure.message = getattr(error, "message", None) or str(error)


def _describe(event: Any) -> str | None:
    """The events ops care about in a timeline; None for the rest."""
    kind = event.WhichOneof("attributes") or ""
    if kind == "activity_task_scheduled_event_attributes":
        return f"scheduled {event.activity_task_scheduled_event_attributes.activity_type.name}"
    if kind == "activity_task_failed_event_attributes":
        return f"failed    {event.activity_task_failed_event_attributes.failure.message[:80]}"
    if kind == "workflow_execution_signaled_event_attributes":
        return f"signal    {event.workflow_execution_signaled_event_attributes.signal_name}"
    if kind == "workflow_execution_update_accepted_event_attributes":
        accepted = event.workflow_execution_update_accepted_event_attributes
        return f"update    {accepted.accepted_request.input.name}"
    return None


async def signal_retry(settings: Settings, payment_id: str, operator: str = "ops-cli") -> None:
    """Send `retry` to a payment in action_required (audited when it takes effect)."""
    client = await connect(settings)
    try:
        await payments_service.retry_payment(
            get_engine(settings), client, payment_id, actor=operator
        )
    finally:
        await dispose_engines()


async def signal_cancel(settings: Settings, payment_id: str, operator: str, reason: str) -> None:
    """Send `cancel` (honoured only before submission; audited when it takes effect)."""
    client = await connect(settings)
    try:
        await payments_service.cancel_payment(
            get_engine(settings), client, payment_id, actor=operator, reason=reason
        )
    finally:
        await dispose_engines()


async def review(
    settings: Settings, payment_id: str, decision: str, reviewer: str, note: str
) -> str:
    """Run the four-eyes `review` update; returns the status the payment moved to (the
    decision is audited with it)."""
    client = await connect(settings)
    try:
        return await payments_service.review_payment(
            get_engine(settings),
            client,
            payment_id,
            decision=decision,
            # the CLI runs inside the platform with its secrets; its operators are named
            # under a tenant of their own, so no partner's principal shares their identity
            reviewer=Reviewer(reviewer, OPS_CLI_TENANT),
            settings=settings.reviews,
            note=note,
        )
    finally:
        await dispose_engines()


def format_row(row: Any) -> str:
    """One line per payment."""
    updated = (
        row.updated_at.strftime("%Y-%m-%d %H:%M:%S") if isinstance(row.updated_at, datetime) else ""
    )
    return (
        f"{row.id}  {row.status:<16} {row.rail:<5} {row.amount:>12} {row.currency}  "
        f"{row.tenant_id:<20} {updated}"
    )


async def reconcile(settings: Settings, statement_date: str, rails: list[str]) -> list[str]:
    """Run the reconciliation of `statement_date` now; lines describing each run."""
    client = await connect(settings)
    runs = await reconcile_now(
        client,
        get_engine(settings),
        settings.temporal.task_queue,
        statement_date,
        rails,
        tag="cli-",
    )
    lines = []
    for run in runs:
        lines.append(f"{run.id}: {run.matched} matched, {len(run.discrepancies)} discrepancies")
        for found in run.discrepancies:
            lines.append(
                f"  {found.kind:<22} {found.reference:<36} ledger={found.ledger_amount} "
                f"statement={found.statement_amount} {found.currency}"
            )
    return lines
