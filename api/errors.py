"""RFC 9457 problem documents: the one place where errors become HTTP responses."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.param = param
        self.headers = headers


def problem_body(status: int, code: str, detail: str, param: str | None = None) -> dict[str, Any]:
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
    return body


def problem_response(
    status: int,
    code: str,
    detail: str,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A JSON response carrying a problem document."""
    return JSONResponse(
        problem_body(status, code, detail, param),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _param(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def service_error_status(error: ServiceError) -> int:
    """The HTTP status a service's refusal answers with."""
    for kind, status in _SERVICE_ERROR_STATUS.items():
        if isinstance(error, kind):
            return status
    return 422


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to a problem document; nothing internal ever leaks."""

    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.status, exc.code, exc.detail, exc.param, exc.headers)

    @app.exception_handler(ServiceError)
    async def _refused(_: Request, exc: ServiceError) -> JSONResponse:
        return problem_response(service_error_status(exc), exc.code, exc.detail, exc.param)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        param = _param(tuple(first.get("loc", ())))
        code = "invalid_json" if first.get("type") == "json_invalid" else "validation_error"
        return problem_response(422, code, f"{param}: {first.get('msg')}", param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        code = codes.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        return problem_response(exc.status_code, code, detail)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return problem_response(500, "internal_error", "An internal error occurred.")


def problem_responses() -> dict[int | str, dict[str, Any]]:
    """OpenAPI documentation of the problem documents every route may answer."""
    from api.schemas import Problem

    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        status: {
            "model": Problem,
            "description": f"{_TITLES[status]} (RFC 9457 problem document)",
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
        for status in (400, 401, 403, 404, 409, 413, 415, 422, 429, 500)
    }
