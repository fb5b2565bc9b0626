"""The bank simulator's HTTP API (FastAPI).

- `POST /v1/sepa/messages` receives a pacs.008 (application/xml), validates it like a bank
  (XSD), deduplicates it by MsgId and settles it asynchronously (see `banksim.processor`).
- `GET /v1/sepa/messages/{message_id}/status` answers the pacs.002 once decided.
- `/v1/admin/rules` injects rejections for tests and demos.
Errors are RFC 9457 problem documents with a machine-readable `code`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from banksim.processor import Processor
from banksim.store import Receipt, RejectionRule, Store
from iso20022.pacs008 import parse_pacs008
from iso20022.schemas import SchemaError
from payments.settings import Settings, get_settings

PROBLEM_JSON = "application/problem+json"
XML_MEDIA_TYPES = frozenset({"application/xml", "text/xml"})
# far above any single-transaction pacs.008; refuses memory exhaustion by oversized bodies
MAX_BODY_BYTES = 1_000_000


def problem(status: int, code: str, title: str, detail: str) -> JSONResponse:
    """An RFC 9457 problem response."""
    return JSONResponse(
        {
            "type": f"https://banksim.payments.example/errors/{code}",
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
        },
        status_code=status,
        media_type=PROBLEM_JSON,
    )


@dataclass(slots=True)
class Bank:
    """What the request handlers share; built by the lifespan."""

    settings: Settings
    store: Store
    processor: Processor


class RuleIn(BaseModel):
    """A rejection rule to inject."""

    creditor_iban: Annotated[str, Field(min_length=5, max_length=42)]
    reject_code: Annotated[str, Field(pattern=r"^[A-Z0-9]{4}$")]


class RuleOut(BaseModel):
    """An injected rejection rule."""

    creditor_iban: str
    reject_code: str
    created_at: datetime

    @classmethod
    def of(cls, rule: RejectionRule) -> RuleOut:
        """Build from the stored rule."""
        return cls(
            creditor_iban=rule.creditor_iban,
            reject_code=rule.reject_code,
            created_at=rule.created_at,
        )


class RuleList(BaseModel):
    """All rules."""

    data: list[RuleOut]
    has_more: bool = False


def _bank(request: Request) -> Bank:
    bank: Bank = request.app.state.bank
    return bank


def _message_ack(message_id: str, *, duplicate: bool) -> dict[str, Any]:
    return {"message_id": message_id, "status": "received", "duplicate": duplicate}


class Faults(BaseModel):
    """Injected faults, in memory (a restart clears them)."""

    latency_seconds: Annotated[float, Field(ge=0, le=120)] = 0.0


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the simulator; `settings` defaults to the process-wide ones."""
    config = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store.open(config.banksim_db_path)
        async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
            processor = Processor(store, config, client)
            app.state.bank = Bank(config, store, processor)
            # nothing is lost across restarts: undecided and undelivered messages continue
            processor.resume()
            try:
                yield
            finally:
                await processor.aclose()
                store.close()

    app = FastAPI(
        title="banksim",
        summary="Bank simulator: SEPA pacs.008 in, signed pacs.002 callbacks out",
        version="0.1.0",
        lifespan=lifespan,
    )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else f"http_{exc.status_code}"
        return problem(exc.status_code, code, "HTTP error", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        detail = f"{where}: {first.get('msg', 'invalid request')}"
        return problem(422, "validation_error", "Invalid request", detail)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness."""
        return {"status": "ok"}

    @app.post(
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
        },
    )
    async def receive_message(request: Request) -> Response:
        """Accept a pacs.008; settlement and the signed pacs.002 callback follow."""
        bank = _bank(request)
        if faults.latency_seconds > 0:
            await asyncio.sleep(faults.latency_seconds)
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in XML_MEDIA_TYPES:
            return problem(
                415,
                "unsupported_media_type",
                "Unsupported media type",
                "send the pacs.008 with Content-Type: application/xml",
            )
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return problem(
                413, "payload_too_large", "Payload too large", f"limit {MAX_BODY_BYTES} bytes"
            )
        try:
            message = parse_pacs008(body)
        except SchemaError as exc:
            return problem(400, "schema_invalid", "Schema validation failed", str(exc))

        receipt = bank.store.record_message(
            message.message_id, hashlib.sha256(body).hexdigest(), body
        )
        if receipt is Receipt.NEW:
            bank.processor.schedule(message.message_id)
            return JSONResponse(_message_ack(message.message_id, duplicate=False), 202)
        if receipt is Receipt.DUPLICATE:
            # a resend of the same bytes: acknowledge again, change nothing
            return JSONResponse(_message_ack(message.message_id, duplicate=True), 200)
        return problem(
            409,
            "duplicate_message_id_conflict",
            "Message id already used",
            f"message {message.message_id} was already received with a different body",
        )

    @app.get(
        "/v1/sepa/messages/{message_id}/status",
        responses={
            200: {"content": {"application/xml": {}}, "description": "The pacs.002"},
            202: {"description": "Received, not decided yet"},
            404: {"description": "Never received"},
        },
    )
    async def message_status(message_id: str, request: Request) -> Response:
        """The pacs.002 of a message once decided; the platform's fallback to callbacks."""
        stored = _bank(request).store.get_message(message_id)
        if stored is None:
            return problem(
                404, "unknown_message", "Unknown message", f"no message {message_id} received"
            )
        if stored.status_report is None:
            return JSONResponse({"message_id": message_id, "status": "pending"}, 202)
        return Response(stored.status_report, media_type="application/xml")

    faults = Faults()

    @app.put("/v1/admin/faults")
    async def set_faults(new: Faults) -> Faults:
        """Inject faults (for now: latency before answering a submission)."""
        faults.latency_seconds = new.latency_seconds
        return faults

    @app.post("/v1/admin/rules", status_code=201)
    async def add_rule(rule: RuleIn, request: Request) -> RuleOut:
        """Reject every future transaction to `creditor_iban` with `reject_code`."""
        return RuleOut.of(_bank(request).store.add_rule(rule.creditor_iban, rule.reject_code))

    @app.get("/v1/admin/rules")
    async def list_rules(request: Request) -> RuleList:
        """The injected rules."""
        return RuleList(data=[RuleOut.of(rule) for rule in _bank(request).store.list_rules()])

    @app.delete("/v1/admin/rules")
    async def clear_rules(request: Request) -> dict[str, int]:
        """Remove every rule."""
        return {"deleted": _bank(request).store.clear_rules()}

    return app
