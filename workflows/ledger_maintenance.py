"""Ledger housekeeping on a Temporal Schedule: release pending transfers whose timeout passed.

Expiry must happen even if nobody touches the transfer again, so it runs on a clock; the
ledger function is idempotent (an expired hold is expired once), so overlapping or retried
runs are harmless.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.models import ExpireInput, ExpireResult, ObserveResult
    from workflows.queues import activity_queue

SCHEDULE_ID = "ledger-maintenance"
INTERVAL = timedelta(minutes=1)
# the whole-ledger verification is heavier: hourly, on its own schedule
VERIFY_SCHEDULE_ID = "ledger-verify"
VERIFY_INTERVAL = timedelta(hours=1)


@workflow.defn(name="LedgerMaintenance")
class LedgerMaintenanceWorkflow:
    """One maintenance pass."""

    @workflow.run
    async def run(self, request: ExpireInput) -> ExpireResult:
        """Expire overdue pending transfers."""
        result: ExpireResult = await workflow.execute_activity(
            "expire_pending_transfers",
            request,
            task_queue=activity_queue(workflow.info().task_queue, "expire_pending_transfers"),
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
            result_type=ExpireResult,
        )
        # gauges for the alert rules (stuck payments; ledger verification when asked)
        await workflow.execute_activity(
            "observe_platform",
            request,
            task_queue=activity_queue(workflow.info().task_queue, "observe_platform"),
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RetryPolicy(maximum_attempts=3),
            result_type=ObserveResult,
        )
        return result
