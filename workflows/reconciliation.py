"""Daily reconciliation: each rail's end-of-day bank statement (camt.053) against the ledger.

Run by a Temporal Schedule every morning for the previous day, or on demand (API/CLI) for
any date. Discrepancies are stored, logged and counted for alerting by the activity; this
workflow only orders the work.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.models import ReconcileInput, ReconcileRailInput, ReconcileResult
    from workflows.queues import activity_queue

SCHEDULE_ID = "reconciliation-daily"


@workflow.defn(name="Reconciliation")
class ReconciliationWorkflow:
    """Reconcile every rail of one statement date."""

    @workflow.run
    async def run(self, request: ReconcileInput) -> list[ReconcileResult]:
        """One activity per rail; a bank that is down is retried, not skipped."""
        day = request.statement_date or (workflow.now() - timedelta(days=1)).date().isoformat()
        results = []
        for rail in request.rails:
            result: ReconcileResult = await workflow.execute_activity(
                "reconcile_statement",
                ReconcileRailInput(day, rail),
                task_queue=activity_queue(workflow.info().task_queue, "reconcile_statement"),
                start_to_close_timeout=timedelta(minutes=5),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=5)),
                result_type=ReconcileResult,
            )
            results.append(result)
        return results
