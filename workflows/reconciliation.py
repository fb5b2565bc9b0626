"""Daily reconciliation: each rail's end-of-day bank statement (camt.053) against the ledger.

Run by a Temporal Schedule every morning for the previous day, or on demand (API/CLI) for
any date. Discrepancies are stored, logged and counted for alerting by the activity; this
workflow only orders the work.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models.reconciliation import ReconcileInput, ReconcileRailInput, ReconcileResult
    from workflows.steps import RECONCILE_STATEMENT

SCHEDULE_ID = "reconciliation-daily"


@workflow.defn(name="Reconciliation")
class ReconciliationWorkflow:
    """Reconcile every rail of one statement date."""

    @workflow.run
    async def run(self, request: ReconcileInput) -> list[ReconcileResult]:
        """One activity per rail; a bank that is down is retried, not skipped."""
        day = request.statement_date or (workflow.now() - timedelta(days=1)).date().isoformat()
        results: list[ReconcileResult] = []
        for rail in request.rails:
            results.append(await RECONCILE_STATEMENT.run(ReconcileRailInput(day, rail)))
        return results
