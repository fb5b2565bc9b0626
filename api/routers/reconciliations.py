"""Reconciliation runs (ops): run one now, list the runs, read a run's discrepancies.

Reconciliation is of the platform's own accounts at the bank, so it spans tenants: only
`platform` keys run or see it (a tenant's `ops` key is refused, 403), and it shows
references and amounts, never customer details.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from api.deps import AppSettings, Engine, Platform, Temporal
from api.errors import ProblemError
from api.fields import RECONCILIATION_ID, IsoDate
from api.problems import (
    AUTHENTICATED,
    ORCHESTRATED,
    RECONCILIATION_NOT_FOUND,
    WITH_BODY,
    WITH_PARAMETERS,
    problems,
)
from kernel.tables import reconciliation_runs
from services.reconciliation import load_runs, reconcile_now

router = APIRouter(prefix="/v1/reconciliations", tags=["reconciliations"])


class ReconciliationCreate(BaseModel):
    """Which statement to reconcile now."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"statement_date": "2026-01-14", "rails": ["sepa"]}]},
    )

    statement_date: IsoDate
    rails: list[Literal["sepa", "ach"]] = Field(default=["sepa", "ach"], min_length=1)


class DiscrepancyOut(BaseModel):
    """A booking the bank's statement and the ledger disagree on."""

    model_config = ConfigDict(from_attributes=True)

    kind: str
    reference: str
    payment_id: str | None
    currency: str
    ledger_amount: int | None
    statement_amount: int | None
    # the deposit of a deposit's discrepancy (its bank credit missing, or another amount)
    deposit_id: str | None = None


class ReconciliationOut(BaseModel):
    """One rail's reconciliation of one statement date."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    object: Literal["reconciliation"] = "reconciliation"
    statement_date: date
    rail: str
    status: str
    matched: int
    statement_entries: int
    ledger_entries: int
    discrepancies: list[DiscrepancyOut] = []


class ReconciliationList(BaseModel):
    """A page of runs, newest statement first."""

    data: list[ReconciliationOut]
    has_more: bool


async def _load(engine: Engine, run_ids: list[str]) -> list[ReconciliationOut]:
    return [ReconciliationOut.model_validate(run) for run in await load_runs(engine, run_ids)]


@router.post(
    "",
    status_code=200,
    response_model=ReconciliationList,
    responses=problems(AUTHENTICATED, ORCHESTRATED, WITH_BODY),
)
async def run_reconciliation(
    body: ReconciliationCreate,
    _: Platform,
    engine: Engine,
    temporal: Temporal,
    settings: AppSettings,
) -> ReconciliationList:
    """Reconcile a statement date now (the daily schedule does yesterday by itself)."""
    runs = await reconcile_now(
        temporal,
        engine,
        settings.temporal.task_queue,
        body.statement_date.isoformat(),
        list(body.rails),
    )
    return ReconciliationList(
        data=[ReconciliationOut.model_validate(run) for run in runs], has_more=False
    )


@router.get(
    "",
    response_model=ReconciliationList,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS),
)
async def list_reconciliations(
    _: Platform,
    engine: Engine,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> ReconciliationList:
    """The latest runs with their discrepancies."""
    async with engine.connect() as conn:
        ids = (
            (
                await conn.execute(
                    select(reconciliation_runs.c.id)
                    .order_by(reconciliation_runs.c.statement_date.desc(), reconciliation_runs.c.id)
                    .limit(limit + 1)
                )
            )
            .scalars()
            .all()
        )
    return ReconciliationList(
        data=await _load(engine, list(ids[:limit])), has_more=len(ids) > limit
    )


@router.get(
    "/{run_id}",
    response_model=ReconciliationOut,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS, RECONCILIATION_NOT_FOUND),
)
async def get_reconciliation(
    run_id: Annotated[str, Path(pattern=RECONCILIATION_ID)], _: Platform, engine: Engine
) -> ReconciliationOut:
    """One run and every discrepancy it found."""
    runs = await _load(engine, [run_id])
    if not runs:
        raise ProblemError(404, "reconciliation_not_found", f"No reconciliation {run_id}.")
    return runs[0]
