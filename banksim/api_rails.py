"""The rail endpoints: SEPA messages, ACH files, end-of-day statements.

Submissions go through the injected faults first (latency, 503, timeout, 503 after storing);
see `banksim.faults`. Status requests (pacs.028) do not: they are how the platform recovers
from those faults; only `status_request_error_rate` touches them.
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from banksim import ach, recalls, sepa, statements
from banksim.bank import Bank
from banksim.faults import SubmissionFault
from banksim.problems import problem
from banksim.signing import PLATFORM_SIGNATURE_HEADER, PLATFORM_TIMESTAMP_HEADER, request_signed
from banksim.store import Receipt
from banksim.vop import VOP_NOT_POSSIBLE, verify_payee
from iso20022.camt056 import parse_camt056
from iso20022.pacs008 import parse_pacs008
from iso20022.pacs028 import parse_pacs028
from iso20022.schemas import SchemaError
from kernel.settings import secret_list
from nacha import NachaError

XML_MEDIA_TYPES = frozenset({"application/xml", "text/xml"})
# far above any single-transaction pacs.008; refuses memory exhaustion by oversized bodies
MAX_MESSAGE_BYTES = 1_000_000
# a NACHA file of ~100k records
MAX_FILE_BYTES = 10_000_000


def get_bank(request: Request) -> Bank:
    """The running simulator (built by the lifespan)."""
    bank: Bank = request.app.state.bank
    return bank


async def require_platform_signature(request: Request) -> None:
    """Refuse (401) a request the platform did not sign: only the holder of the shared
    submission secret may send messages, files and questions, or read statements."""
    settings = get_bank(request).settings
    if not request_signed(
        secret_list(settings.rails.submission_secret),
        request.headers.get(PLATFORM_TIMESTAMP_HEADER),
        request.headers.get(PLATFORM_SIGNATURE_HEADER),
        request.method,
        request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        await request.body(),
        settings.rails.callback_tolerance_seconds,
    ):
        raise UnsignedRequestError


class UnsignedRequestError(Exception):
    """A request without a valid platform signature (answered 401 by the app)."""


router = APIRouter(dependencies=[Depends(require_platform_signature)])


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _xml_body(request: Request, what: str) -> bytes | Response:
    """The request's XML body, or the problem with it (not XML: 415; too large: 413)."""
    if _media_type(request) not in XML_MEDIA_TYPES:
        return problem(
            415,
            "unsupported_media_type",
            "Unsupported media type",
            f"send the {what} with Content-Type: application/xml",
        )
    body = await request.body()
    if len(body) > MAX_MESSAGE_BYTES:
        return problem(
            413, "payload_too_large", "Payload too large", f"limit {MAX_MESSAGE_BYTES} bytes"
        )
    return body


async def _draw_fault(bank: Bank) -> SubmissionFault:
    if bank.faults.config.latency_seconds > 0:
        await asyncio.sleep(bank.faults.config.latency_seconds)
    return bank.faults.submission_fault()


def _unavailable() -> Response:
    return problem(503, "service_unavailable", "Service unavailable", "injected fault: try again")


def _stored_unavailable(what: str) -> Response:
    # the bank kept the submission, but answers as if it had not: the platform cannot tell
    return problem(503, "service_unavailable", "Service unavailable", f"injected fault ({what})")


async def _hang_if_timeout(bank: Bank, fault: SubmissionFault) -> None:
    # the submission is already stored: like a real timeout where the bank got the message
    if fault is SubmissionFault.TIMEOUT:
        await asyncio.sleep(bank.faults.config.timeout_seconds)


def _message_ack(message_id: str, *, duplicate: bool) -> dict[str, object]:
    return {"message_id": message_id, "status": "received", "duplicate": duplicate}


class PayeeCheckIn(BaseModel):
    """A Verification-of-Payee request: the IBAN and the name the payer gives."""

    iban: Annotated[str, Field(min_length=5, max_length=42)]
    name: Annotated[str, Field(min_length=1, max_length=140)]
    bic: Annotated[str | None, Field(min_length=8, max_length=11)] = None


@router.post(
    "/v1/sepa/payee-verifications",
    responses={503: {"description": "Injected fault"}},
)
async def check_payee(check: PayeeCheckIn, request: Request) -> dict[str, str | None]:
    """Verification of Payee: `result` MTCH, CMTC (with the registered `name`), NMTC, or NOAP
    when the bank cannot say."""
    bank = get_bank(request)
    if await _draw_fault(bank) is not SubmissionFault.NONE:
        return {"result": VOP_NOT_POSSIBLE, "name": None}
    answer = verify_payee(bank.store, check.iban, check.name)
    return {"result": answer.result, "name": answer.name}


@router.post(
    "/v1/sepa/messages",
    status_code=202,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/xml": {"schema": {"type": "string"}}},
        }
    },
    responses={
        200: {"description": "Duplicate of an already received message (no effect)"},
        400: {"description": "Not a valid pacs.008.001.08 (code schema_invalid)"},
        409: {"description": "MsgId reused with a different body"},
        503: {"description": "Injected fault"},
    },
)
async def receive_message(request: Request) -> Response:
    """Accept a pacs.008; ACCP then ACSC/RJCT follow as signed pacs.002 callbacks."""
    bank = get_bank(request)
    fault = await _draw_fault(bank)
    if fault is SubmissionFault.ERROR:
        return _unavailable()
    body = await _xml_body(request, "pacs.008")
    if isinstance(body, Response):
        return body
    try:
        message = parse_pacs008(body)
    except SchemaError as exc:
        return problem(400, "schema_invalid", "Schema validation failed", str(exc))

    receipt = sepa.receive(bank, message.message_id, body)
    if receipt is Receipt.CONFLICT:
        return problem(
            409,
            "duplicate_message_id_conflict",
            "Message id already used",
            f"message {message.message_id} was already received with a different body",
        )
    if fault is SubmissionFault.ERROR_AFTER_STORE:
        return _stored_unavailable(f"message {message.message_id} kept")
    await _hang_if_timeout(bank, fault)
    if receipt is Receipt.NEW:
        return JSONResponse(_message_ack(message.message_id, duplicate=False), 202)
    # a resend of the same bytes: acknowledge again, change nothing
    return JSONResponse(_message_ack(message.message_id, duplicate=True), 200)


@router.get(
    "/v1/sepa/messages/{message_id}/status",
    responses={
        200: {"content": {"application/xml": {}}, "description": "The latest pacs.002"},
        202: {"description": "Received, no status report yet"},
        404: {"description": "Never received"},
    },
)
async def message_status(message_id: str, request: Request) -> Response:
    """The latest pacs.002 of a message (ACCP, then ACSC/RJCT); the fallback to callbacks."""
    bank = get_bank(request)
    if bank.store.get_message(message_id) is None:
        return problem(
            404, "unknown_message", "Unknown message", f"no message {message_id} received"
        )
    report = bank.store.latest_report(message_id)
    if report is None:
        return JSONResponse({"message_id": message_id, "status": "pending"}, 202)
    return Response(report, media_type="application/xml")


@router.post(
    "/v1/sepa/status-requests",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/xml": {"schema": {"type": "string"}}},
        }
    },
    responses={
        200: {
            "content": {"application/xml": {}},
            "description": "A pacs.002.001.12 about the transaction: its current status, or "
            "RJCT with reason AG09 (original payment never received) if the bank has no record",
        },
        400: {"description": "Not a valid pacs.028.001.05 (code schema_invalid)"},
        503: {"description": "Injected fault (status_request_error_rate)"},
    },
)
async def status_request(request: Request) -> Response:
    """Answer a pacs.028 status request at once with a pacs.002 (nothing changes at the bank)."""
    bank = get_bank(request)
    if bank.faults.status_request_fails():
        return _unavailable()
    body = await _xml_body(request, "pacs.028")
    if isinstance(body, Response):
        return body
    try:
        status_req = parse_pacs028(body)
    except SchemaError as exc:
        return problem(400, "schema_invalid", "Schema validation failed", str(exc))
    return Response(sepa.answer_status_request(bank, status_req), media_type="application/xml")


@router.get(
    "/v1/sepa/messages/{message_id}/return",
    responses={
        200: {"content": {"application/xml": {}}, "description": "The pacs.004 payment return"},
        404: {"description": "Never received, or not returned"},
    },
)
async def message_return(message_id: str, request: Request) -> Response:
    """The pacs.004 returning a settled message, if the creditor's bank sent it back."""
    bank = get_bank(request)
    returned = bank.store.report(message_id, sepa.RETURN_STEP)
    if returned is None:
        return problem(404, "not_returned", "Not returned", f"no return of {message_id}")
    return Response(returned, media_type="application/xml")


def _invalid_file(errors: list[dict[str, object]]) -> Response:
    first = errors[0]
    return problem(
        400,
        "invalid_file",
        "Invalid NACHA file",
        f"line {first['line']}: {first['message']}",
        errors=errors,
    )


@router.post(
    "/v1/ach/files",
    status_code=202,
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/plain": {"schema": {"type": "string"}}}}
    },
    responses={
        200: {"description": "Duplicate of an already received file (the original ack)"},
        400: {"description": "Not a valid NACHA file (code invalid_file, with errors)"},
        409: {"description": "File id reused with different content"},
        503: {"description": "Injected fault"},
    },
)
async def receive_file(request: Request) -> Response:
    """Accept a NACHA file; it settles at the next cut-off, returns follow."""
    bank = get_bank(request)
    fault = await _draw_fault(bank)
    if fault is SubmissionFault.ERROR:
        return _unavailable()
    if _media_type(request) != "text/plain":
        return problem(
            415,
            "unsupported_media_type",
            "Unsupported media type",
            "send the NACHA file with Content-Type: text/plain",
        )
    body = await request.body()
    if len(body) > MAX_FILE_BYTES:
        return problem(
            413, "payload_too_large", "Payload too large", f"limit {MAX_FILE_BYTES} bytes"
        )
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        return _invalid_file(
            [{"line": line, "code": "invalid_character", "message": "NACHA files are ASCII"}]
        )
    try:
        receipt, file = ach.receive(bank, text)
    except NachaError as exc:
        return _invalid_file(
            [
                {
                    "line": exc.line,
                    "code": exc.code.value,
                    "message": exc.detail,
                    "record_type": exc.record_type,
                    "field": exc.field,
                }
            ]
        )
    if receipt is Receipt.CONFLICT:
        return problem(
            409,
            "duplicate_file_id_conflict",
            "File id already used",
            f"file {file.file_id} was already received with different content",
        )
    if fault is SubmissionFault.ERROR_AFTER_STORE:
        return _stored_unavailable(f"file {file.file_id} kept")
    await _hang_if_timeout(bank, fault)
    if receipt is Receipt.NEW:
        return JSONResponse(ach.ack(file, duplicate=False), 202)
    return JSONResponse(ach.ack(file, duplicate=True), 200)


@router.get("/v1/ach/files/{file_id}", responses={404: {"description": "Never received"}})
async def file_status(file_id: str, request: Request) -> Response:
    """Where a file and each of its entries stand; the fallback to callbacks."""
    bank = get_bank(request)
    file = bank.store.get_ach_file(file_id)
    if file is None:
        return problem(404, "unknown_file", "Unknown file", f"no file {file_id} received")
    return JSONResponse(ach.view(bank, file))


@router.get(
    "/v1/statements/{day}",
    responses={200: {"content": {"application/xml": {}}, "description": "A camt.053.001.08"}},
)
async def statement(
    day: date, request: Request, account: Literal["sepa", "ach"] | None = None
) -> Response:
    """The end-of-day statement (camt.053) of `day` (simulator dates), one Stmt per account."""
    rails = (account,) if account else statements.RAILS
    xml = statements.statement_xml(get_bank(request), day, rails)
    return Response(xml, media_type="application/xml")


@router.post(
    "/v1/sepa/recalls",
    status_code=202,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/xml": {"schema": {"type": "string"}}},
        }
    },
    responses={
        400: {"description": "Not a valid camt.056.001.12 (code schema_invalid)"},
        503: {"description": "Injected fault"},
    },
)
async def receive_recall(request: Request) -> Response:
    """Accept a camt.056 recall; the camt.029 answer (and for an accepted one the pacs.004)
    follow as signed callbacks."""
    bank = get_bank(request)
    fault = await _draw_fault(bank)
    if fault is not SubmissionFault.NONE:
        return _unavailable()
    body = await _xml_body(request, "camt.056")
    if isinstance(body, Response):
        return body
    try:
        recall = parse_camt056(body)
    except SchemaError as exc:
        return problem(400, "schema_invalid", "Schema validation failed", str(exc))
    recalls.receive_recall(bank, recall)
    return JSONResponse({"case_id": recall.case_id, "status": "received"}, 202)
