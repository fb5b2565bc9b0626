"""Ledger housekeeping on a Temporal Schedule: release pending transfers whose timeout passed.

Expiry must happen even if nobody touches the transfer again, so it runs on a clock; the
ledger function is idempotent (an expired hold is expired once), so overlapping or retried
runs are harmless.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models.ledger_maintenance import ExpireInput, ExpireResult, PurgeInput
    from workflows.steps import EXPIRE_PENDING_TRANSFERS, OBSERVE_PLATFORM, PURGE_EXPIRED_RECORDS

SCHEDULE_ID = "ledger-maintenance"
INTERVAL = timedelta(minutes=1)
# the whole-ledger verification is heavier: hourly, on its own schedule
VERIFY_SCHEDULE_ID = "ledger-verify"
VERIFY_INTERVAL = timedelta(hours=1)
# retention: idempotency records, events and webhook deliveries past their retention
PURGE_SCHEDULE_ID = "retention-purge"
PURGE_INTERVAL = timedelta(hours=1)


@workflow.defn(name="LedgerMaintenance")
class LedgerMaintenanceWorkflow:
    """One maintenance pass."""

    @workflow.run
    async def run(self, request: ExpireInput) -> ExpireResult:
        """Expire overdue pending transfers (and purge expired records when asked)."""
        result = await EXPIRE_PENDING_TRANSFERS.run(request)
        # gauges for the alert rules (stuck payments; ledger verification when asked)
        await OBSERVE_PLATFORM.run(request)
        if request.purge_expired:
            # only its own schedule asks: passes recorded before the field never purge, so
            # their histories replay with the same commands
            await PURGE_EXPIRED_RECORDS.run(PurgeInput())
        return result
