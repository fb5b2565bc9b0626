"""One run of a payment schedule (issue #19 item 4): make the run's payment.

A payment schedule (`psch_…`) is a Temporal Schedule of the same id (visible in the Web UI's
Schedules), whose action starts this workflow. The run reads its nominal time (when the
Schedule meant it to run, set by the Schedule as `TemporalScheduledStartTime`; a run started
by hand names it) and asks `make_scheduled_payment` for the payment: the payment id derives
from the schedule id and the nominal time, so a retried or repeated run never pays twice.
The payment then runs its own workflow, as any other payment does.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.common import SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from workflows.models.schedule import (
        ScheduledPaymentInput,
        ScheduledPaymentResult,
        ScheduleRunInput,
    )
    from workflows.steps import MAKE_SCHEDULED_PAYMENT

# set by Temporal on every workflow a Schedule starts: the run's nominal time
SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


def nominal_time(run: ScheduleRunInput) -> str:
    """The run's nominal time (ISO 8601): as given, else as the Schedule set it, else the
    time the Schedule appended to the workflow id, else the start time."""
    if run.nominal_time:
        return run.nominal_time
    info = workflow.info()
    scheduled = info.typed_search_attributes.get(SCHEDULED_START_TIME)
    if scheduled is not None:
        return scheduled.isoformat()
    # `<action id>-2026-12-07T20:00:00Z`
    suffix = info.workflow_id[-20:]
    try:
        return datetime.fromisoformat(suffix).isoformat()
    except ValueError:
        return info.start_time.isoformat()


@workflow.defn(name="ScheduledPaymentRun")
class ScheduledPaymentRunWorkflow:
    """Makes one run's payment; see the module docstring."""

    @workflow.run
    async def run(self, run: ScheduleRunInput) -> ScheduledPaymentResult:
        """Make the payment of this run (once, whatever retries)."""
        return await MAKE_SCHEDULED_PAYMENT.run(
            ScheduledPaymentInput(run.schedule_id, nominal_time(run))
        )
