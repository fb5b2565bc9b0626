"""RFC 9457 problem responses with a machine-readable `code`."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    """An RFC 9457 problem response; `extra` members are added (e.g. `errors`)."""
    return JSONResponse(
        {
            "type": f"https://banksim.payments.example/errors/{code}",
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
            **extra,
        },
        status_code=status,
        media_type=PROBLEM_JSON,
    )
