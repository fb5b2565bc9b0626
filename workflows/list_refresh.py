"""Watch-list refresh on a Temporal Schedule, and the re-screening of customers it triggers.

`ListRefreshWorkflow` loads the lists from their sources and records versions that changed
(`refresh_watch_lists`); when one did, it starts `RescreenCustomersWorkflow`, which pages
through every customer, screens each against the new lists and flags hits the customer did not
have before. The re-screening continues as new every few pages, so its history stays small
however many customers there are; its id derives from the list versions, so one update is
re-screened once even if several refreshes see it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from workflows.models import (
        ListRefreshInput,
        ListRefreshResult,
        RescreenInput,
        RescreenPageInput,
        RescreenPageResult,
        RescreenResult,
    )
    from workflows.queues import queue_for

SCHEDULE_ID = "watch-list-refresh"
# loading a full OFAC edition takes seconds; a download may take longer
REFRESH_TIMEOUT = timedelta(minutes=5)
# an unreachable source fails this run after a few attempts; the schedule tries again later
REFRESH_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=5)
PAGE_TIMEOUT = timedelta(minutes=2)
PAGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)


def rescreen_workflow_id(versions: dict[str, str]) -> str:
    """The re-screening of one set of list versions."""
    digest = hashlib.sha256(json.dumps(versions, sort_keys=True).encode()).hexdigest()
    return f"rescreen-customers-{digest[:16]}"


@workflow.defn(name="ListRefresh")
class ListRefreshWorkflow:
    """One refresh: load, record changed versions, start the re-screening."""

    @workflow.run
    async def run(self, request: ListRefreshInput) -> ListRefreshResult:
        """Refresh the lists; re-screen every customer when a version changed."""
        result: ListRefreshResult = await workflow.execute_activity(
            "refresh_watch_lists",
            request,
            task_queue=queue_for(workflow.info().task_queue, "compliance"),
            start_to_close_timeout=REFRESH_TIMEOUT,
            retry_policy=REFRESH_RETRY,
            result_type=ListRefreshResult,
        )
        if not result.changed:
            return result
        result.rescreen_workflow_id = rescreen_workflow_id(result.versions)
        try:
            await workflow.start_child_workflow(
                RescreenCustomersWorkflow.run,
                RescreenInput(result.versions, page_size=request.rescreen_page_size),
                id=result.rescreen_workflow_id,
                task_queue=workflow.info().task_queue,
                # the re-screening outlives this refresh run
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.info("these list versions are being re-screened already")
        return result


@workflow.defn(name="RescreenCustomers")
class RescreenCustomersWorkflow:
    """Screens every customer again, a page per activity, continuing as new every few pages."""

    @workflow.run
    async def run(self, request: RescreenInput) -> RescreenResult:
        """Page through all customers in id order from `after_id`."""
        info = workflow.info()
        run_key = request.run_key or f"{info.workflow_id}/{info.run_id}"
        after, screened, flagged = request.after_id, request.screened, request.flagged
        versions = dict(request.list_versions)
        for _ in range(max(1, request.pages_per_run)):
            page: RescreenPageResult = await workflow.execute_activity(
                "rescreen_customers_page",
                RescreenPageInput(run_key, after, request.page_size),
                task_queue=queue_for(info.task_queue, "compliance"),
                start_to_close_timeout=PAGE_TIMEOUT,
                retry_policy=PAGE_RETRY,
                result_type=RescreenPageResult,
            )
            after = page.last_id
            screened += page.screened
            flagged += page.flagged
            versions = page.list_versions or versions
            if page.done:
                return RescreenResult(screened, flagged, versions)
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(
            RescreenInput(
                request.list_versions,
                after_id=after,
                page_size=request.page_size,
                pages_per_run=request.pages_per_run,
                screened=screened,
                flagged=flagged,
                run_key=run_key,
            )
        )
