"""Liveness and readiness."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import text

from api.deps import Engine, Temporal
from api.problems import INTERNAL_ERROR, INVALID_CHARACTERS, problems

router = APIRouter(tags=["health"])


class Liveness(BaseModel):
    """The process answers."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"]


class Readiness(BaseModel):
    """Whether each dependency answers."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "ready", "checks": {"database": "ok", "temporal": "ok"}}]
        }
    )

    status: Literal["ready", "not_ready"]
    checks: dict[str, Literal["ok", "unavailable"]]


@router.get(
    "/healthz",
    response_model=Liveness,
    responses=problems(INVALID_CHARACTERS, INTERNAL_ERROR),
)
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        503: {"model": Readiness, "description": "PostgreSQL or Temporal does not answer."},
        **problems(INVALID_CHARACTERS, INTERNAL_ERROR),
    },
)
async def readyz(engine: Engine, temporal: Temporal) -> JSONResponse:
    """Ready when PostgreSQL and Temporal both answer."""
    checks: dict[str, str] = {}
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unavailable"
    try:
        await temporal.service_client.check_health()
        checks["temporal"] = "ok"
    except Exception:
        checks["temporal"] = "unavailable"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )
