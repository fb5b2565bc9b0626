"""Monthly partitions created ahead, on a daily Temporal Schedule (issue #23).

The append-only tables are partitioned by month and have no default partition: a row
whose month has no partition is refused. This pass creates the current month's and the
next ones' (PAYMENTS_PARTITION_MONTHS_AHEAD) while they are still empty, so creating them
is instant; it is idempotent, so a retried or repeated pass creates nothing twice.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models.ledger_maintenance import PartitionInput, PartitionResult
    from workflows.steps import ENSURE_PARTITIONS

SCHEDULE_ID = "partition-maintenance"
INTERVAL = timedelta(days=1)


@workflow.defn(name="PartitionMaintenance")
class PartitionMaintenanceWorkflow:
    """One pass: create the missing partitions of this month and the months ahead."""

    @workflow.run
    async def run(self, request: PartitionInput) -> PartitionResult:
        """Run the activity (all the work is one idempotent SQL function)."""
        return await ENSURE_PARTITIONS.run(request)
