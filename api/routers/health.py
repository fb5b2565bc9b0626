"""Liveness and readiness."""

from __future__ import annotations

from datetime import timedelta
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
    """Whether each dependency answers.

    `ready`: both answer. `degraded` (still 200): Temporal is down, PostgreSQL answers, so
    every read works and what needs Temporal answers 503 `orchestrator_unavailable` with
    `Retry-After`; taking every replica out of the load balancer would only turn those
    reads into connection errors. `not_ready` (503): PostgreSQL is down, nothing can be
    served but 503 `database_unavailable`.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "ready", "checks": {"database": "ok", "temporal": "ok"}}]
        }
    )

    status: Literal["ready", "degraded", "not_ready"]
    checks: dict[str, Literal["ok", "unavailable"]]


@router.get(
    "/healthz",
    response_model=Liveness,
    responses=problems(INVALID_CHARACTERS, INTERNAL_ERROR),
)
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


# within the Kubernetes readiness probe's 3 s timeout (deploy/k8s/api.yaml)
PROBE_TIMEOUT = timedelta(seconds=2)


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        503: {"model": Readiness, "description": "PostgreSQL does not answer."},
        **problems(INVALID_CHARACTERS, INTERNAL_ERROR),
    },
)
async def readyz(engine: Engine, temporal: Temporal) -> JSONResponse:
    """Ready when PostgreSQL and Temporal both answer; degraded (200) when only Temporal
    does not (docs/runbooks/temporal-down.md); not ready (503) without PostgreSQL
    (docs/runbooks/postgres-down.md)."""
    checks: dict[str, str] = {}
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception:
        checks["database"] = "unavailable"
    try:
        # bounded: a hung server must not hang the probe
        await temporal.service_client.check_health(timeout=PROBE_TIMEOUT)
        checks["temporal"] = "ok"
    except Exception:
        checks["temporal"] = "unavailable"
    if checks["database"] != "ok":
        status = "not_ready"
    elif checks["temporal"] != "ok":
        status = "degraded"
    else:
        status = "ready"
    return JSONResponse(
        {"status": status, "checks": checks}, status_code=503 if status == "not_ready" else 200
    )
