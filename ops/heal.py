"""After a restore: bring the database level with what Temporal and the bank know.

A restore to a point in time loses every commit after it, but the payment workflows in
Temporal moved on: payments the database no longer knows, or knows in an older status,
whose holds and posts are gone from the ledger. `payments heal --since TIME` (TIME = the
restore point) finds them and re-drives them, from two independent records:

- Temporal: every `Payment` workflow still running or closed since TIME (listed by
  `WorkflowType`, `ExecutionStatus` and `CloseTime`; the `PaymentStatus` search attribute
  names what each reached). Its history gives the payment's order (the start event's
  input) and every ledger step that completed (activity results); its `status` query gives
  the status history.
- The bank: its statements (camt.053) of the days since TIME list every payment it paid.

For each payment behind: the payment row is recreated if missing; the ledger steps the
history shows completed are run again with the same transfer ids (the ledger answers
`exists` for those the restore kept, so nothing moves twice); a post is replayed only if
the bank's statement shows the debit; the missing status changes are recorded (with their
events, whose ids are fixed, so no webhook is delivered twice); a workflow that waits in
`action_required` (`ledger_out_of_sync`) because its post found no hold is retried once the
hold is back. What cannot be re-driven (the bank has no record of a payment Temporal calls
settled, or the ledger refuses a step) is marked `action_required` / `ledger_out_of_sync`
for ops (docs/runbooks/PaymentsLedgerOutOfSync.md). Each healed payment gets an audit record.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.common.v1 import Payloads
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities.bank_http import BankAuth
from activities.ledger import LedgerActivities, hold_id
from activities.payment_records import PaymentRecordActivities
from iso20022.camt053 import parse_camt053
from kernel import audit
from kernel.settings import Settings
from kernel.tables import payment_status_history, payments
from ledger.engine import get_account
from ledger.tables import ledger_transfers
from services.payments import first_status, new_payment_values
from workflows.models import LedgerInput, LedgerResult, PaymentInput, RecordStatusInput
from workflows.models.payment import PaymentView, RetryInput
from workflows.models.vocabulary import ActionReason, PaymentStatus
from workflows.payment import PaymentWorkflow

RAILS = ("sepa", "ach")
# the ledger steps of a payment's history, in the order they can happen
LEDGER_STEPS = ("hold_funds", "block_funds", "post_hold", "void_hold", "reverse_payment")
# a hold the ledger refused for want of funds was never placed: nothing to replay
NOT_HELD = "exceeds_credits"
HEALER = "payments-heal"
# a payment whose workflow could not be queried: its row is back and it resumes by itself
RESUMING = "resuming"
# how long the heal waits for those to answer again (a guard: they retry every 10 s or less)
RESUME_GUARD_SECONDS = 120.0


@dataclass(frozen=True)
class HealedPayment:
    """One payment the database was behind on, and what the heal did about it."""

    payment_id: str
    before: str  # the database's status, or "missing"
    after: str
    outcome: str  # "re-driven" or "action_required"
    transfers: list[str]
    note: str = ""


@dataclass
class HealReport:
    """How many payments Temporal listed, and those that were healed or marked."""

    examined: int = 0
    healed: list[HealedPayment] = field(default_factory=list)

    @property
    def marked(self) -> list[HealedPayment]:
        """Those left `action_required` for ops."""
        return [h for h in self.healed if h.outcome == "action_required"]

    def lines(self) -> list[str]:
        """The report, one line per healed payment, then the totals."""
        out = [
            f"  {h.payment_id}: {h.before} -> {h.after} ({h.outcome};"
            f" ledger {', '.join(h.transfers) or 'nothing'}){f': {h.note}' if h.note else ''}"
            for h in self.healed
        ]
        redriven = len(self.healed) - len(self.marked)
        out.append(
            f"examined {self.examined} payment workflow(s): {len(self.healed)} healed"
            f" ({redriven} re-driven, {len(self.marked)} marked action_required)"
        )
        return out


@dataclass(frozen=True)
class _History:
    order: PaymentInput
    started_at: datetime
    ledger: list[tuple[str, LedgerInput, LedgerResult]]


async def bank_bookings(settings: Settings, since: datetime) -> Counter[str]:
    """How many times the bank paid each payment (debits less returns), from its
    statements of every day since `since`; ACH entries are named by their individual id
    (the payment id's last 15 characters) and counted under it."""
    booked: Counter[str] = Counter()
    day = since.astimezone(UTC).date() - timedelta(days=1)
    # the bank's business day may run ahead of ours (an ACH cut-off falls on the next day)
    last = datetime.now(UTC).date() + timedelta(days=2)
    # the bank answers the platform's signed requests only, as the reconciliation's
    auth = BankAuth(settings.rails.bank_url, settings.rails.submission_secret)
    async with httpx.AsyncClient(base_url=settings.rails.bank_url, timeout=30, auth=auth) as bank:
        while day <= last:
            for rail in RAILS:
                response = await bank.get(f"/v1/statements/{day}", params={"account": rail})
                response.raise_for_status()
                for entry in parse_camt053(response.content).for_account(rail).entries:
                    if entry.received_credit or not entry.end_to_end_id:
                        continue
                    booked[entry.end_to_end_id] += 1 if entry.direction == "DBIT" else -1
            day += timedelta(days=1)
    return booked


def _booked(booked: Counter[str], order: PaymentInput) -> int:
    key = order.payment_id if order.rail == "sepa" else order.payment_id[-15:]
    return booked.get(key, 0)


async def _decode(client: Client, payloads: Payloads, kind: type) -> Any:
    return (await client.data_converter.decode(payloads.payloads, [kind]))[0]


async def _history(client: Client, payment_id: str) -> _History:
    """The payment's order and completed ledger steps, from its workflow history."""
    handle = client.get_workflow_handle(payment_id)
    order: PaymentInput | None = None
    started_at = datetime.now(UTC)
    scheduled: dict[int, tuple[str, LedgerInput]] = {}
    ledger: list[tuple[str, LedgerInput, LedgerResult]] = []
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_started_event_attributes"):
            attrs = event.workflow_execution_started_event_attributes
            order = await _decode(client, attrs.input, PaymentInput)
            started_at = event.event_time.ToDatetime(tzinfo=UTC)
        elif event.HasField("activity_task_scheduled_event_attributes"):
            sched = event.activity_task_scheduled_event_attributes
            if sched.activity_type.name in LEDGER_STEPS:
                request = await _decode(client, sched.input, LedgerInput)
                scheduled[event.event_id] = (sched.activity_type.name, request)
        elif event.HasField("activity_task_completed_event_attributes"):
            done = event.activity_task_completed_event_attributes
            if done.scheduled_event_id in scheduled:
                name, request = scheduled[done.scheduled_event_id]
                ledger.append((name, request, await _decode(client, done.result, LedgerResult)))
    if order is None:
        raise RuntimeError(f"{payment_id}: no start event in its history")
    return _History(order, started_at, ledger)


async def _ensure_row(engine: AsyncEngine, history: _History) -> None:
    """Recreate the payment's row as it was when initiated (its later statuses follow)."""
    order = history.order
    creditor = {k: v for k, v in vars(order.creditor).items() if v is not None}
    async with engine.begin() as conn:
        created = await conn.execute(
            insert(payments)
            .values(
                {
                    **new_payment_values(order, creditor, {}),
                    "screening_hits": [],
                    "created_at": history.started_at,
                    "updated_at": history.started_at,
                }
            )
            .on_conflict_do_nothing()
        )
        if created.rowcount:
            await conn.execute(
                insert(payment_status_history)
                .values(
                    payment_id=order.payment_id,
                    seq=0,
                    status=first_status(order).value,
                    at=history.started_at,
                )
                .on_conflict_do_nothing()
            )


async def _can_hold(engine: AsyncEngine, request: LedgerInput) -> bool:
    """Whether the hold exists already, or the account's available balance covers it."""
    async with engine.connect() as conn:
        held = (
            await conn.execute(
                select(ledger_transfers.c.id).where(
                    ledger_transfers.c.id == hold_id(request.payment_id)
                )
            )
        ).first()
        account = await get_account(conn, request.account_id)
    return held is not None or (account is not None and account.available >= request.amount)


async def _replay_ledger(
    ledger_engine: AsyncEngine, history: _History, booked: int
) -> tuple[list[str], str]:
    """Run the history's completed ledger steps again (same ids); returns the transfers
    and, if a step could not be replayed, why."""
    done: list[str] = []
    for name, request, result in history.ledger:
        if name == "hold_funds" and result.result == NOT_HELD:
            continue  # never held the first time either
        if name == "hold_funds" and not await _can_hold(ledger_engine, request):
            # not tried: a refused transfer id stays refused, and ops may yet restore the
            # money (a deposit lost with the restore) and heal again
            return done, f"the account cannot cover the hold: {NOT_HELD} (a credit lost?)"
        if name == "post_hold" and booked < 1:
            return done, "Temporal saw the bank settle it, but no bank statement shows the debit"
        step = getattr(LedgerActivities(ledger_engine), name)
        try:
            replayed: LedgerResult = await step(request)
        except ApplicationError as err:
            return done, f"the ledger refused {name}: {err.message}"
        if replayed.result == NOT_HELD:  # overtaken by another hold since the check
            return done, f"the ledger refused {name}: {NOT_HELD}"
        done.append(f"{replayed.transfer_id}:{replayed.result}")
    return done, ""


async def _mark_out_of_sync(engine: AsyncEngine, payment_id: str, note: str) -> None:
    """Leave the payment in `action_required` (`ledger_out_of_sync`) for ops; the workflow's
    own next transition, if it has one, moves it on."""
    async with engine.begin() as conn:
        await conn.execute(
            update(payments)
            .where(payments.c.id == payment_id)
            .values(
                status=PaymentStatus.ACTION_REQUIRED.value,
                action_reason=ActionReason.LEDGER_OUT_OF_SYNC.value,
                failure_message=note,
                updated_at=datetime.now(UTC),
            )
        )


async def _waits_for_a_restored_hold(engine: AsyncEngine, view: PaymentView) -> bool:
    """Whether the workflow waits in ledger_out_of_sync while its hold is in the ledger."""
    if view.action_reason != ActionReason.LEDGER_OUT_OF_SYNC:
        return False
    async with engine.connect() as conn:
        held = await conn.execute(
            select(ledger_transfers.c.id).where(ledger_transfers.c.id == hold_id(view.payment_id))
        )
        return held.first() is not None


async def _unmark(engine: AsyncEngine, payment_id: str, view: PaymentView) -> None:
    """Give a payment an earlier heal marked back the status its workflow reached."""
    failure = view.failure
    async with engine.begin() as conn:
        await conn.execute(
            update(payments)
            .where(payments.c.id == payment_id)
            .values(
                status=view.status,
                action_reason=view.action_reason,
                failure_code=failure.code if failure else None,
                failure_message=failure.message if failure else None,
                failure_reason=failure.reason_code if failure else None,
                updated_at=datetime.now(UTC),
            )
        )


async def _heal_one(
    engine: AsyncEngine,
    client: Client,
    settings: Settings,
    payment_id: str,
    running: bool,
    booked: Counter[str],
) -> HealedPayment | None:
    handle = client.get_workflow_handle_for(PaymentWorkflow.run, payment_id)
    async with engine.connect() as conn:
        row = (await conn.execute(select(payments).where(payments.c.id == payment_id))).first()
    try:
        view: PaymentView | None = await handle.query(PaymentWorkflow.status)
    except RPCError:
        # A running workflow whose status change cannot be recorded (its row is gone) fails
        # its workflow tasks until the row is back, and answers no query meanwhile. Its
        # history still has its order and ledger steps; once the row exists it records its
        # own statuses.
        if row is not None:
            raise
        view = None
    latest = view.history[-1].seq if view and view.history else 0
    # marked by an earlier heal while its workflow moved on: healed again once ops fixed
    # what stopped it (docs/runbooks/restore.md)
    marked = (
        row is not None
        and row.action_reason == ActionReason.LEDGER_OUT_OF_SYNC
        and view is not None
        and view.action_reason != ActionReason.LEDGER_OUT_OF_SYNC
    )
    if row is not None and row.status_seq >= latest and not marked:
        if running and view is not None and await _waits_for_a_restored_hold(engine, view):
            # its post found no hold (the restore lost it) before the heal put it back
            await handle.signal(PaymentWorkflow.retry, RetryInput(requested_by=HEALER))
            return HealedPayment(
                payment_id, f"{row.status}#{row.status_seq}", "retried", "re-driven", [],
                "its hold is back: the workflow posts again",
            )  # fmt: skip
        return None  # the database is level with the workflow
    before = "missing" if row is None else f"{row.status}#{row.status_seq}"
    history = await _history(client, payment_id)
    # the ledger first: a recreated row lets a waiting workflow go on to its next step,
    # which may need the hold
    transfers, problem = await _replay_ledger(engine, history, _booked(booked, history.order))
    await _ensure_row(engine, history)
    if view is None:
        healed = HealedPayment(payment_id, before, RESUMING, "re-driven", transfers)
        await _audit_healed(engine, history, healed, booked)
        return healed
    records = PaymentRecordActivities(engine, client, settings)
    for change in view.history:
        if row is not None and change.seq <= row.status_seq:
            continue
        last = change.seq == latest
        await records.record_payment_status(
            RecordStatusInput(
                payment_id,
                change.seq,
                change.status,
                change.at,
                failure=view.failure if last else None,
                action_reason=view.action_reason if last else None,
            )
        )
    outcome, after = "re-driven", f"{view.status}#{latest}"
    if marked and not problem:
        await _unmark(engine, payment_id, view)
    if problem:
        await _mark_out_of_sync(engine, payment_id, problem)
        outcome, after = "action_required", f"action_required#{latest}"
    elif running and view.action_reason == ActionReason.LEDGER_OUT_OF_SYNC:
        # its post found no hold (the restore lost it); the hold is back: post again
        await handle.signal(PaymentWorkflow.retry, RetryInput(requested_by=HEALER))
    healed = HealedPayment(payment_id, before, after, outcome, transfers, problem)
    await _audit_healed(engine, history, healed, booked)
    return healed


async def _audit_healed(
    engine: AsyncEngine, history: _History, healed: HealedPayment, booked: Counter[str]
) -> None:
    """The heal's audit record of one payment (once per state it was healed to)."""
    await audit.append(
        engine,
        actor=HEALER,
        action="payment.healed",
        subject=healed.payment_id,
        tenant_id=history.order.tenant_id,
        detail={
            "before": healed.before,
            "after": healed.after,
            "outcome": healed.outcome,
            "transfers": healed.transfers,
            "bank_booked": _booked(booked, history.order),
            "note": healed.note,
        },
        idempotency_key=f"{healed.payment_id}:healed:{healed.after}:{healed.outcome}",
    )


async def heal(
    engine: AsyncEngine, client: Client, settings: Settings, since: datetime
) -> HealReport:
    """Heal every payment whose workflow ran or closed since `since` (see the module)."""
    booked = await bank_bookings(settings, since)
    report = HealReport()
    query = (
        "WorkflowType = 'Payment' AND (ExecutionStatus = 'Running'"
        f" OR CloseTime >= '{since.astimezone(UTC).isoformat()}')"
    )
    resuming: list[str] = []
    async for execution in client.list_workflows(query):
        report.examined += 1
        running = execution.status == WorkflowExecutionStatus.RUNNING
        healed = await _heal_one(engine, client, settings, execution.id, running, booked)
        if healed is not None:
            report.healed.append(healed)
            if healed.after == RESUMING:
                resuming.append(healed.payment_id)
    # Those that could not be queried resume once their row is back (their next status
    # record is retried at most 10 s apart). Look again when they answer: one whose post
    # found no hold waits in ledger_out_of_sync and is retried now that its hold is back.
    deadline = asyncio.get_running_loop().time() + RESUME_GUARD_SECONDS
    for payment_id in resuming:
        handle = client.get_workflow_handle_for(PaymentWorkflow.run, payment_id)
        while True:
            try:
                await handle.query(PaymentWorkflow.status)
                break
            except RPCError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)
        again = await _heal_one(engine, client, settings, payment_id, True, booked)
        if again is not None:
            report.healed = [h for h in report.healed if h.payment_id != payment_id] + [again]
    return report
