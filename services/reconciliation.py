"""Run a reconciliation now, and read stored runs and their discrepancies (the API and the
CLI share this).

The reconciliation activity writes them (activities/reconciliation.py); this is the one place
that reads them back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from kernel.tables import reconciliation_discrepancies, reconciliation_runs
from rails.reconcile import Discrepancy
from workflows.models import ReconcileInput
from workflows.reconciliation import ReconciliationWorkflow


@dataclass(frozen=True)
class ReconciliationRun:
    """One rail's reconciliation of one statement date."""

    id: str
    statement_date: date
    rail: str
    status: str
    matched: int
    statement_entries: int
    ledger_entries: int
    discrepancies: list[Discrepancy] = field(default_factory=list)


async def load_runs(engine: AsyncEngine, run_ids: list[str]) -> list[ReconciliationRun]:
    """The runs named, in the order named (unknown ids are left out)."""
    async with engine.connect() as conn:
        runs = (
            await conn.execute(
                select(reconciliation_runs).where(reconciliation_runs.c.id.in_(run_ids))
            )
        ).all()
        found = (
            await conn.execute(
                select(reconciliation_discrepancies)
                .where(reconciliation_discrepancies.c.run_id.in_(run_ids))
                .order_by(reconciliation_discrepancies.c.seq)
            )
        ).all()
    by_run: dict[str, list[Discrepancy]] = {}
    for row in found:
        by_run.setdefault(row.run_id, []).append(
            Discrepancy(
                row.kind,
                row.reference,
                row.currency,
                row.payment_id,
                row.ledger_amount,
                row.statement_amount,
                row.deposit_id,
            )
        )
    by_id = {
        run.id: ReconciliationRun(
            run.id,
            run.statement_date,
            run.rail,
            run.status,
            run.matched,
            run.statement_entries,
            run.ledger_entries,
            by_run.get(run.id, []),
        )
        for run in runs
    }
    return [by_id[run_id] for run_id in run_ids if run_id in by_id]


async def reconcile_now(
    client: Client,
    engine: AsyncEngine,
    task_queue: str,
    statement_date: str,
    rails: list[str],
    tag: str = "",
) -> list[ReconciliationRun]:
    """Reconcile `statement_date` on `rails` now (a workflow run of its own, its id marked with
    `tag`) and read the runs back."""
    results = await client.execute_workflow(
        ReconciliationWorkflow.run,
        ReconcileInput(statement_date, rails),
        id=f"reconciliation-{statement_date}-{tag}{uuid.uuid4().hex[:8]}",
        task_queue=task_queue,
    )
    return await load_runs(engine, [result.run_id for result in results])
