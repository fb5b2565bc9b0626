"""Rail callbacks: the bank's signed pacs.002 status reports become workflow signals."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Annotated

import structlog
from fastapi import APIRouter, Header, Request
from temporalio.service import RPCError, RPCStatusCode

from api.deps import AppSettings, Temporal
from api.errors import ProblemError
from iso20022.pacs002 import parse_pacs002
from iso20022.schemas import SchemaError
from workflows.models import RailEvent
from workflows.payment import PaymentWorkflow

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


@router.post("/sepa/callbacks", status_code=200, include_in_schema=False)
async def sepa_callback(
    request: Request,
    temporal: Temporal,
    settings: AppSettings,
    banksim_timestamp: Annotated[str | None, Header()] = None,
    banksim_signature: Annotated[str | None, Header()] = None,
) -> dict[str, int]:
    """Verify the bank's signature, then signal each payment named in the pacs.002."""
    body = await request.body()
    if not signature_valid(
        settings.rail_callback_secret,
        banksim_timestamp,
        banksim_signature,
        body,
        settings.rail_callback_tolerance_seconds,
    ):
        raise ProblemError(401, "invalid_signature", "The callback signature does not verify.")
    try:
        report = parse_pacs002(body)
    except (SchemaError, ValueError) as err:
        raise ProblemError(400, "invalid_status_report", str(err)) from err
    signaled = 0
    for tx in report.transactions:
        handle = temporal.get_workflow_handle_for(PaymentWorkflow.run, tx.end_to_end_id)
        event = RailEvent(report.original_message_id, tx.status, tx.reason_code)
        try:
            await handle.signal(PaymentWorkflow.rail_event, event)
            signaled += 1
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            # not ours, or already finished: acknowledge so the bank stops retrying
            log.warning("callback for unknown payment", end_to_end_id=tx.end_to_end_id)
    return {"signaled": signaled}
