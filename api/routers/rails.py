"""Rail callbacks: the bank's signed status messages become payment workflow signals.

SEPA sends pacs.002 status reports and pacs.004 returns; ACH sends a settlement notice per
file and NACHA return files. Every callback is signed (HMAC over timestamp and body);
duplicates and out-of-order deliveries are harmless because the payment workflow keeps the
first final status.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.deps import AppSettings, Engine, Temporal
from api.errors import ProblemError
from iso20022.pacs002 import parse_pacs002
from iso20022.pacs004 import parse_pacs004
from iso20022.schemas import PACS004, SchemaError, message_name
from kernel.tables import ach_entries
from nacha import NachaError, parse_file
from workflows.models import RailEvent
from workflows.payment import RETURNED, PaymentWorkflow

router = APIRouter(prefix="/v1/rails", tags=["rails"])
log = structlog.get_logger()


def signature_valid(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, tolerance: int
) -> bool:
    """HMAC-SHA256 over `<timestamp>.<body>`, within `tolerance` seconds of now."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(f"v1={expected.hexdigest()}", signature)


async def verified_body(
    request: Request,
    settings: AppSettings,
    banksim_timestamp: Annotated[str | None, Header()] = None,
    banksim_signature: Annotated[str | None, Header()] = None,
) -> bytes:
    """The callback's body, once the bank's signature over it verifies (401 otherwise)."""
    body = await request.body()
    if not signature_valid(
        settings.rail_callback_secret,
        banksim_timestamp,
        banksim_signature,
        body,
        settings.rail_callback_tolerance_seconds,
    ):
        raise ProblemError(401, "invalid_signature", "The callback signature does not verify.")
    return body


VerifiedBody = Annotated[bytes, Depends(verified_body)]


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


@router.post("/sepa/callbacks", status_code=200, include_in_schema=False)
async def sepa_callback(body: VerifiedBody, temporal: Temporal) -> dict[str, int]:
    """Signal each payment named in the bank's signed pacs.002 (status) or pacs.004 (return)."""
    try:
        if message_name(body) == PACS004:
            returned = parse_pacs004(body)
            source = returned.original_message_id
            events = [
                (tx.end_to_end_id, RailEvent(source, RETURNED, tx.reason_code))
                for tx in returned.transactions
            ]
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
    return {"signaled": signaled}


class AchSettlementNotice(BaseModel):
    """The bank's notice that a NACHA file settled (JSON)."""

    event_id: str
    type: str
    file_id: str
    settlement_date: str
    trace_numbers: list[str]


async def _signal_traces(
    engine: AsyncEngine,
    temporal: Client,
    events: Mapping[str, tuple[str, str | None]],
    *,
    file_id: str | None = None,
) -> int:
    """Signal the payment of each trace number with (status, reason code); entries of
    another file than `file_id` (when given) and unknown traces are logged and skipped."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(ach_entries).where(ach_entries.c.trace_number.in_(list(events)))
            )
        ).all()
    entries = {row.trace_number: row for row in rows}
    signaled = 0
    for trace, (status, code) in events.items():
        entry = entries.get(trace)
        if entry is None or (file_id is not None and entry.file_id != file_id):
            log.warning("rail event for unknown ACH entry", trace=trace, status=status, code=code)
            continue
        event = RailEvent(entry.file_id, status, code)
        signaled += await signal_payment(temporal, entry.payment_id, event)
    return signaled


@router.post("/ach/callbacks", status_code=200, include_in_schema=False)
async def ach_settlement(body: VerifiedBody, temporal: Temporal, engine: Engine) -> dict[str, int]:
    """A settled file: every payment in it is settled (duplicates are harmless)."""
    try:
        notice = AchSettlementNotice.model_validate_json(body)
    except ValueError as err:
        raise ProblemError(400, "invalid_notice", str(err)) from err
    if notice.type != "ach.file.settled":
        return {"signaled": 0}
    settled = dict.fromkeys(notice.trace_numbers, ("ACSC", None))
    return {"signaled": await _signal_traces(engine, temporal, settled, file_id=notice.file_id)}


@router.post("/ach/returns", status_code=200, include_in_schema=False)
async def ach_returns(body: VerifiedBody, temporal: Temporal, engine: Engine) -> dict[str, int]:
    """A NACHA return file: each return names our original trace number and the R-code."""
    try:
        returned = parse_file(body.decode("ascii"))
    except (NachaError, UnicodeDecodeError) as err:
        raise ProblemError(400, "invalid_return_file", str(err)) from err
    returns: dict[str, tuple[str, str | None]] = {
        entry.return_addenda.original_entry_trace_number: (
            RETURNED,
            entry.return_addenda.return_reason_code,
        )
        for batch in returned.batches
        for entry in batch.entries
        if entry.return_addenda is not None
    }
    return {"signaled": await _signal_traces(engine, temporal, returns)}
