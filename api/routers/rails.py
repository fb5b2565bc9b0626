"""Rail callbacks: the bank's signed status messages become payment workflow signals.

SEPA sends pacs.002 status reports, pacs.004 returns and camt.029 recall resolutions; ACH
sends a settlement notice per file and NACHA return files. Every callback is signed (HMAC
over event id, timestamp and body: rails/callback_auth.py), and a replay of one already
acted on is acknowledged and ignored; duplicates and out-of-order deliveries are harmless
anyway, because the payment workflow keeps the first final status.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel
from sqlalchemy import Delete, Select, Update, delete, select, update
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.deps import AppSettings, Engine, Temporal
from api.errors import ProblemError
from iso20022.camt029 import parse_camt029
from iso20022.pacs002 import parse_pacs002
from iso20022.pacs004 import parse_pacs004
from iso20022.schemas import CAMT029, PACS004, SchemaError, message_name
from kernel.db import autocommit
from kernel.settings import Settings, secret_list
from kernel.tables import ach_entries, rail_callback_receipts
from nacha import ChangeAddenda, NachaError, parse_file
from rails.callback_auth import callback_signature_valid
from services.counterparties import apply_change_notice, owner_counterparty
from services.events import DeliveryStarter
from workflows.models import RailEvent, RecallAnswer
from workflows.payment import RETURNED, PaymentWorkflow
from workflows.recall import FOLLOWING_CANCELLATION, recall_workflow_id

router = APIRouter(prefix="/v1/rails", tags=["rails"])
log = structlog.get_logger()


@dataclass(frozen=True)
class Callback:
    """A callback whose signature verified; `duplicate` when its event was acted on before."""

    event_id: str
    body: bytes
    duplicate: bool


async def verified_callback(
    request: Request,
    settings: AppSettings,
    engine: Engine,
    banksim_event_id: Annotated[str | None, Header()] = None,
    banksim_timestamp: Annotated[str | None, Header()] = None,
    banksim_signature: Annotated[str | None, Header()] = None,
) -> AsyncIterator[Callback]:
    """The callback, once the bank's signature over its event id, timestamp and body verifies
    (401 otherwise); its receipt is recorded once the route has acted on it, so the bank's
    retry of a callback that failed here is acted on, and a replay of one that succeeded is
    not."""
    body = await request.body()
    if not callback_signature_valid(
        secret_list(settings.rails.callback_secret),
        banksim_event_id,
        banksim_timestamp,
        banksim_signature,
        body,
        tolerance_seconds=settings.rails.callback_tolerance_seconds,
        now=time.time(),
    ):
        raise ProblemError(401, "invalid_signature", "The callback signature does not verify.")
    assert banksim_event_id is not None  # the signature covers it
    async with autocommit(engine) as conn:  # one read: no BEGIN, no ROLLBACK
        seen = (await conn.execute(receipt_query(banksim_event_id))).first() is not None
    if seen:
        log.warning("rail callback replayed", event_id=banksim_event_id)
    yield Callback(banksim_event_id, body, seen)
    if not seen:
        now = datetime.now(UTC)
        async with engine.begin() as conn:
            await conn.execute(receipt_statement(banksim_event_id, now))
            # a receipt outlives the tolerance window twice over: older signatures no longer
            # verify, so their receipts can go (a bounded batch per callback keeps it small)
            await conn.execute(expired_receipts(now, settings.rails.callback_tolerance_seconds))


def receipt_query(event_id: str) -> Select[Any]:
    """The receipt of the bank's callback `event_id`, if it was acted on already."""
    return select(rail_callback_receipts.c.event_id).where(
        rail_callback_receipts.c.event_id == event_id
    )


def receipt_statement(event_id: str, now: datetime) -> Insert:
    """Record that the callback `event_id` was acted on (once)."""
    return (
        insert(rail_callback_receipts)
        .values(event_id=event_id, received_at=now)
        .on_conflict_do_nothing()
    )


def expired_receipts(now: datetime, tolerance_seconds: float) -> Delete:
    """Delete up to 100 receipts older than twice the signature tolerance."""
    cutoff = now - timedelta(seconds=2 * tolerance_seconds)
    oldest = (
        select(rail_callback_receipts.c.event_id)
        .where(rail_callback_receipts.c.received_at < cutoff)
        .limit(100)
    )
    return delete(rail_callback_receipts).where(rail_callback_receipts.c.event_id.in_(oldest))


# scope "function": the receipt commits before the answer leaves, so a replay sent the moment
# the bank (or whoever captured the callback) sees our 200 already finds it
VerifiedCallback = Annotated[Callback, Depends(verified_callback, scope="function")]
DUPLICATE = {"signaled": 0, "duplicate": 1}


async def signal_payment(temporal: Client, payment_id: str, event: RailEvent) -> bool:
    """Tell a payment what the rail said; False if no such payment is running."""
    handle = temporal.get_workflow_handle_for(PaymentWorkflow.run, payment_id)
    try:
        await handle.signal(PaymentWorkflow.rail_event, event)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        # not ours, or already finished: acknowledge so the bank stops retrying
        log.warning("rail event for unknown payment", payment_id=payment_id)
        return False
    return True


async def signal_recall(temporal: Client, payment_id: str, signal: str, arg: object) -> bool:
    """Tell a payment's recall workflow what the bank said; False if it is not running."""
    handle = temporal.get_workflow_handle(recall_workflow_id(payment_id))
    try:
        await handle.signal(signal, arg)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        log.warning("recall answer for no running recall", payment_id=payment_id)
        return False
    return True


async def _recall_answer(temporal: Client, body: bytes) -> dict[str, int]:
    """A camt.029 resolving a recall: the `recall_answer` signal of the payment's recall."""
    try:
        resolution = parse_camt029(body)
    except (SchemaError, ValueError) as err:
        raise ProblemError(400, "invalid_status_report", str(err)) from err
    answer = RecallAnswer(resolution.accepted, resolution.reason_code or None)
    signaled = await signal_recall(temporal, resolution.end_to_end_id, "recall_answer", answer)
    return {"signaled": int(signaled)}


@router.post("/sepa/callbacks", status_code=200, include_in_schema=False)
async def sepa_callback(callback: VerifiedCallback, temporal: Temporal) -> dict[str, int]:
    """Signal each payment named in the bank's signed pacs.002 (status) or pacs.004 (return);
    a camt.029 (recall resolution), and a pacs.004 following a recall (reason FOCR), go to
    the payment's recall workflow instead."""
    if callback.duplicate:
        return DUPLICATE
    body = callback.body
    recalled: list[tuple[str, RailEvent]] = []
    try:
        name = message_name(body)
        if name == CAMT029:
            return await _recall_answer(temporal, body)
        if name == PACS004:
            returned = parse_pacs004(body)
            source = returned.original_message_id
            events: list[tuple[str, RailEvent]] = []
            for tx in returned.transactions:
                named = (tx.end_to_end_id, RailEvent(source, RETURNED, tx.reason_code))
                # the funds of an accepted recall: the recall books them, not the payment
                (recalled if tx.reason_code == FOLLOWING_CANCELLATION else events).append(named)
        else:
            report = parse_pacs002(body)
            events = [
                (tx.end_to_end_id, RailEvent(report.original_message_id, tx.status, tx.reason_code))
                for tx in report.transactions
            ]
    except (SchemaError, ValueError) as err:
        raise ProblemError(400, "invalid_status_report", str(err)) from err
    signaled = 0
    for payment_id, event in events:
        signaled += await signal_payment(temporal, payment_id, event)
    for payment_id, event in recalled:
        signaled += await signal_recall(temporal, payment_id, "rail_event", event)
    return {"signaled": signaled}


class AchSettlementNotice(BaseModel):
    """The bank's notice that a NACHA file settled (JSON)."""

    event_id: str
    type: str
    file_id: str
    settlement_date: date
    trace_numbers: list[str]


def settle_file_entries(file_id: str, traces: Sequence[str], settled_on: date) -> Update:
    """Record the bank's settlement date on the entries of one file with these trace numbers,
    returning them (a settlement notice names its file: trace numbers are unique within a
    file, not forever). Reconciliation books the entries on that date."""
    return (
        update(ach_entries)
        .where(ach_entries.c.file_id == file_id, ach_entries.c.trace_number.in_(list(traces)))
        .values(settled_on=settled_on)
        .returning(*ach_entries.c)
    )


def trace_entries_query(traces: Sequence[str]) -> Select[Any]:
    """Every entry with these trace numbers, newest effective date first (a trace number
    comes round after ten million entries: one per date, a handful over the years)."""
    return (
        select(ach_entries)
        .where(ach_entries.c.trace_number.in_(list(traces)))
        .order_by(ach_entries.c.trace_number, ach_entries.c.effective_date.desc())
    )


async def _signal_entries(
    temporal: Client,
    events: Mapping[str, tuple[str, str | None]],
    entries: Mapping[str, Any],
) -> int:
    """Signal the payment of each trace's entry with (status, reason code); traces without an
    entry are logged and skipped."""
    signaled = 0
    for trace, (status, code) in events.items():
        entry = entries.get(trace)
        if entry is None:
            log.warning("rail event for unknown ACH entry", trace=trace, status=status, code=code)
            continue
        event = RailEvent(entry.file_id, status, code)
        signaled += await signal_payment(temporal, entry.payment_id, event)
    return signaled


def returned_entries(rows: Sequence[Any], individual_ids: Mapping[str, str]) -> dict[str, Any]:
    """For each returned trace, the entry it returns: of the entries with that trace, the one
    with the newest effective date whose payment the return's Individual Identification
    Number (which the RDFI copies from the original entry: our payment id's tail) names."""
    matched: dict[str, Any] = {}
    for row in rows:  # newest effective date first within a trace
        if row.trace_number in matched:
            continue
        individual_id = individual_ids.get(row.trace_number, "")
        if not individual_id or row.payment_id.endswith(individual_id):
            matched[row.trace_number] = row
    return matched


@router.post("/ach/callbacks", status_code=200, include_in_schema=False)
async def ach_settlement(
    callback: VerifiedCallback, temporal: Temporal, engine: Engine
) -> dict[str, int]:
    """A settled file: every payment in it is settled (duplicates are harmless)."""
    if callback.duplicate:
        return DUPLICATE
    try:
        notice = AchSettlementNotice.model_validate_json(callback.body)
    except ValueError as err:
        raise ProblemError(400, "invalid_notice", str(err)) from err
    if notice.type != "ach.file.settled":
        return {"signaled": 0}
    settled = dict.fromkeys(notice.trace_numbers, ("ACSC", None))
    # the date commits before any payment hears of it: a payment posted on the notice is
    # then always booked, for reconciliation, on the day the bank settled it
    async with engine.begin() as conn:
        statement = settle_file_entries(notice.file_id, list(settled), notice.settlement_date)
        rows = (await conn.execute(statement)).all()
    entries = {row.trace_number: row for row in rows}
    return {"signaled": await _signal_entries(temporal, settled, entries)}


@router.post("/ach/returns", status_code=200, include_in_schema=False)
async def ach_returns(
    callback: VerifiedCallback, temporal: Temporal, engine: Engine, settings: AppSettings
) -> dict[str, int]:
    """A NACHA return file: each return names our original trace number and the R-code; a
    notification of change (COR entry) names it and what to correct."""
    if callback.duplicate:
        return DUPLICATE
    try:
        returned = parse_file(callback.body.decode("ascii"))
    except (NachaError, UnicodeDecodeError) as err:
        raise ProblemError(400, "invalid_return_file", str(err)) from err
    returns: dict[str, tuple[str, str | None]] = {}
    individual_ids: dict[str, str] = {}
    changes: dict[str, ChangeAddenda] = {}
    cor_traces: dict[str, str] = {}
    for batch in returned.batches:
        for entry in batch.entries:
            if entry.change_addenda is not None:
                trace = entry.change_addenda.original_entry_trace_number
                changes[trace] = entry.change_addenda
                cor_traces[trace] = entry.trace_number
                individual_ids[trace] = entry.individual_id.strip()
                continue
            if entry.return_addenda is None:
                continue
            trace = entry.return_addenda.original_entry_trace_number
            returns[trace] = (RETURNED, entry.return_addenda.return_reason_code)
            individual_ids[trace] = entry.individual_id.strip()
    async with engine.connect() as conn:
        rows = (await conn.execute(trace_entries_query([*returns, *changes]))).all()
    entries = returned_entries(rows, individual_ids)
    corrected = await _apply_changes(engine, temporal, settings, changes, cor_traces, entries)
    signaled = await _signal_entries(
        temporal, returns, {t: e for t, e in entries.items() if t in returns}
    )
    return {"signaled": signaled, "corrected": corrected}


async def _apply_changes(
    engine: AsyncEngine,
    temporal: Client,
    settings: Settings,
    changes: Mapping[str, ChangeAddenda],
    cor_traces: Mapping[str, str],
    entries: Mapping[str, Any],
) -> int:
    """Apply each notification of change to the saved counterparty its original entry was
    for (a prenote's, or a payment's that named one); never to the payment itself. Returns
    how many counterparties changed."""
    corrected = 0
    deliveries = DeliveryStarter(temporal, settings)
    for trace, change in changes.items():
        entry = entries.get(trace)
        counterparty_id = None if entry is None else await owner_counterparty(engine, entry)
        if counterparty_id is None:
            # an inline creditor: nothing saved to correct; the partner retypes it next time
            log.warning("notification of change for no saved counterparty", trace=trace)
            continue
        corrected += await apply_change_notice(
            engine,
            deliveries,
            counterparty_id=counterparty_id,
            change_code=change.change_code,
            corrected_data=change.corrected_data,
            source=f"COR {cor_traces[trace]} of entry {trace}",
        )
    return corrected
