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

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from workflows.models.list_refresh import (
        ListRefreshInput,
        ListRefreshResult,
        RescreenInput,
        RescreenPageInput,
        RescreenPageResult,
        RescreenResult,
    )
    from workflows.steps import (
        REFRESH_WATCH_LISTS,
        RESCREEN_COUNTERPARTIES_PAGE,
        RESCREEN_CUSTOMERS_PAGE,
        Step,
    )

SCHEDULE_ID = "watch-list-refresh"


def rescreen_workflow_id(versions: dict[str, str], what: str = "customers") -> str:
    """The re-screening of one set of list versions (of customers, or of counterparties)."""
    digest = hashlib.sha256(json.dumps(versions, sort_keys=True).encode()).hexdigest()
    return f"rescreen-{what}-{digest[:16]}"


@workflow.defn(name="ListRefresh")
class ListRefreshWorkflow:
    """One refresh: load, record changed versions, start the re-screening."""

    @workflow.run
    async def run(self, request: ListRefreshInput) -> ListRefreshResult:
        """Refresh the lists; re-screen every customer when a version changed."""
        result = await REFRESH_WATCH_LISTS.run(request)
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


async def _rescreen_pages(
    request: RescreenInput, page_step: Step[RescreenPageInput, RescreenPageResult]
) -> RescreenResult:
    """Page through every row (customers or counterparties) in id order from `after_id`, a
    page per `page_step` activity, continuing as new every `pages_per_run` pages."""
    info = workflow.info()
    run_key = request.run_key or f"{info.workflow_id}/{info.run_id}"
    after, screened, flagged = request.after_id, request.screened, request.flagged
    versions = dict(request.list_versions)
    for _ in range(max(1, request.pages_per_run)):
        page = await page_step.run(RescreenPageInput(run_key, after, request.page_size))
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


@workflow.defn(name="RescreenCustomers")
class RescreenCustomersWorkflow:
    """Screens every customer again, a page per activity, continuing as new every few pages."""

    @workflow.run
    async def run(self, request: RescreenInput) -> RescreenResult:
        """Page through all customers in id order from `after_id`."""
        return await _rescreen_pages(request, RESCREEN_CUSTOMERS_PAGE)


@workflow.defn(name="RescreenCounterparties")
class RescreenCounterpartiesWorkflow:
    """Screens every saved counterparty again after a list update, a page per activity,
    continuing as new every few pages. Started by the refresh step that recorded the new
    versions (id from the versions: one update is re-screened once), so the refresh
    workflow's own commands are unchanged."""

    @workflow.run
    async def run(self, request: RescreenInput) -> RescreenResult:
        """Page through all counterparties in id order from `after_id`."""
        return await _rescreen_pages(request, RESCREEN_COUNTERPARTIES_PAGE)
