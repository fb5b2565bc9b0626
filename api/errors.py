"""RFC 9457 problem documents: the one place where errors become HTTP responses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from kernel.outages import database_unavailable, orchestrator_unavailable
from services.errors import (
    ConflictError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    ServiceError,
)

log = structlog.get_logger()

PROBLEM_JSON = "application/problem+json"
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


_SERVICE_ERROR_STATUS: dict[type[ServiceError], int] = {
    NotFoundError: 404,
    ForbiddenError: 403,
    ConflictError: 409,
    InvalidRequestError: 422,
}


class ProblemError(Exception):
    """A client-visible error with a stable `code` (and `param` for validation errors)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.param = param
        self.headers = headers
        # one entry per refused item of a payment batch
        self.errors = errors


def problem_body(
    status: int,
    code: str,
    detail: str,
    param: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The problem document for an error."""
    body: dict[str, Any] = {
        "type": f"https://docs.payments.example/errors/{code}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    if param is not None:
        body["param"] = param
    if errors is not None:
        body["errors"] = errors
    return body


def problem_response(
    status: int,
    code: str,
    detail: str,
    param: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    """A JSON response carrying a problem document."""
    return JSONResponse(
        problem_body(status, code, detail, param, errors),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _param(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def idempotency_key_problem(errors: Sequence[Any]) -> tuple[str, str] | None:
    """(code, detail) when the `Idempotency-Key` header is missing, empty or too long.

    The header is declared required in the OpenAPI document, so FastAPI validates it; DESIGN
    §7 answers its absence with 400 `idempotency_key_missing`, not a generic 422.
    """
    for error in errors:
        location = [str(part).lower() for part in error.get("loc", ())]
        if location != ["header", "idempotency-key"]:
            continue
        if error.get("type") == "string_too_long":
            return "idempotency_key_invalid", "Idempotency-Key is too long."
        return "idempotency_key_missing", "This request needs an `Idempotency-Key` header."
    return None


# the methods a route can serve; Allow lists those some route at the path does
_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route fully matches at the request's path, sorted.

    Asks each route whether it would serve the path with each method (routers included by
    FastAPI are routes too), so included routers need no special case.
    """
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes
        )
    ]


def service_error_status(error: ServiceError) -> int:
    """The HTTP status a service's refusal answers with."""
    for kind, status in _SERVICE_ERROR_STATUS.items():
        if isinstance(error, kind):
            return status
    return 422


# the exception types an outage surfaces as (kernel/outages.py says which instances count);
# registered by type so Starlette's ExceptionMiddleware answers them like any other problem
_OUTAGE_TYPES: tuple[type[Exception], ...] = (
    RPCError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    RuntimeError,
    sa_exc.SQLAlchemyError,
    psycopg.Error,
)


def outage_response(exc: BaseException, retry_after_seconds: int) -> JSONResponse | None:
    """503 + `Retry-After` when `exc` says Temporal or PostgreSQL is down, else None.

    PostgreSQL is named first: a request that failed on the database may have touched
    Temporal on the way, but it cannot succeed before the database is back.
    """
    headers = {"Retry-After": str(max(1, retry_after_seconds))}
    if database_unavailable(exc):
        return problem_response(
            503,
            "database_unavailable",
            "The database is unavailable. Retry after `Retry-After` seconds, with the same"
            " Idempotency-Key: what took effect is replayed, what did not runs once.",
            headers=headers,
        )
    if orchestrator_unavailable(exc):
        return problem_response(
            503,
            "orchestrator_unavailable",
            "The workflow service is unavailable. Retry after `Retry-After` seconds, with the"
            " same Idempotency-Key: what took effect is replayed, what did not runs once.",
            headers=headers,
        )
    return None


def install_error_handlers(app: FastAPI, *, retry_after_seconds: int = 5) -> None:
    """Map every error to a problem document; nothing internal ever leaks.

    A dependency that is down answers 503 with `Retry-After` (issue #24): the request can
    succeed unchanged later, which a 500 would not tell the client.
    """

    async def _outage(request: Request, exc: Exception) -> JSONResponse:
        response = outage_response(exc, retry_after_seconds)
        if response is not None:
            log.warning("dependency unavailable", path=request.url.path, error=repr(exc)[:300])
            return response
        log.exception("unhandled error", path=request.url.path)
        return problem_response(500, "internal_error", "An internal error occurred.")

    for kind in _OUTAGE_TYPES:
        app.add_exception_handler(kind, _outage)

    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(
            exc.status, exc.code, exc.detail, exc.param, exc.headers, exc.errors
        )

    @app.exception_handler(ServiceError)
    async def _refused(_: Request, exc: ServiceError) -> JSONResponse:
        return problem_response(service_error_status(exc), exc.code, exc.detail, exc.param)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        key_problem = idempotency_key_problem(exc.errors())
        if key_problem is not None:
            return problem_response(400, *key_problem)
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        param = _param(tuple(first.get("loc", ())))
        code = "invalid_json" if first.get("type") == "json_invalid" else "validation_error"
        return problem_response(422, code, f"{param}: {first.get('msg')}", param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's only 400: a body it cannot decode (not UTF-8); the same problem as
            # any other body that is not JSON
            return problem_response(422, "invalid_json", "The body is not UTF-8 JSON.", "body")
        codes = {404: "not_found", 405: "method_not_allowed"}
        code = codes.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # RFC 9110: a 405 lists every method the target supports, not only the methods of
            # the first route Starlette happened to match
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem_response(exc.status_code, code, detail, headers=headers or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # an outage raised from inside another exception (its cause or context)
        return await _outage(request, exc)
