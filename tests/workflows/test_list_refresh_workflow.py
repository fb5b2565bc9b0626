"""List refresh and customer re-screening on the time-skipping test server (fake activities).

Pins the orchestration: a refresh starts a re-screening only when a version changed, and the
re-screening pages through every customer exactly once across continue-as-new runs.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from ops.devstack import binary
from tests.workflows.recording import HistoryRecorder
from workflows import steps
from workflows.list_refresh import (
    ListRefreshWorkflow,
    RescreenCustomersWorkflow,
    rescreen_workflow_id,
)
from workflows.models import (
    ListRefreshInput,
    ListRefreshResult,
    RescreenInput,
    RescreenPageInput,
    RescreenPageResult,
)
from workflows.queues import ROLES, queue_for
from workflows.steps import implements

QUEUE = "list-refresh-test"
VERSIONS = {"OFAC-SDN": "ofac:2021", "PEP": "pep:1"}


@dataclass
class FakeLists:
    """A refresh that reports `changed`, and 23 customers paged by the fake page activity."""

    changed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    customers: list[str] = field(default_factory=lambda: [f"cus_{i:03d}" for i in range(23)])
    flagged: set[str] = field(default_factory=lambda: {"cus_004", "cus_017"})
    pages: list[RescreenPageInput] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)

    def activities(self) -> list[Callable[..., Any]]:
        @implements(steps.REFRESH_WATCH_LISTS)
        async def refresh(_: ListRefreshInput) -> ListRefreshResult:
            return ListRefreshResult(dict(VERSIONS), list(self.changed), refused=dict(self.refused))

        @implements(steps.RESCREEN_CUSTOMERS_PAGE)
        async def page(request: RescreenPageInput) -> RescreenPageResult:
            self.pages.append(request)
            self.run_ids.append(activity.info().workflow_run_id or "")
            rows = [c for c in self.customers if c > request.after_id][: request.page_size]
            return RescreenPageResult(
                last_id=rows[-1] if rows else request.after_id,
                screened=len(rows),
                flagged=len(self.flagged.intersection(rows)),
                list_versions=dict(VERSIONS),
                done=len(rows) < request.page_size,
            )

        return [refresh, page]


# recorded for tests/replay with RECORD_HISTORIES=1 (make record-histories)
RECORDER = HistoryRecorder("list_refresh")
record_histories = RECORDER.fixture()


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    yield environment
    await environment.shutdown()


@contextlib.asynccontextmanager
async def worker_for(env: WorkflowEnvironment, fake: FakeLists) -> AsyncIterator[None]:
    async with contextlib.AsyncExitStack() as stack:
        for role in ROLES:
            worker = Worker(
                env.client,
                task_queue=queue_for(QUEUE, role),
                workflows=[ListRefreshWorkflow, RescreenCustomersWorkflow]
                if role == "payments"
                else [],
                activities=fake.activities(),
            )
            await stack.enter_async_context(worker)
        yield


async def refresh(env: WorkflowEnvironment, request: ListRefreshInput) -> ListRefreshResult:
    """Run one refresh to its end (its history recorded for tests/replay)."""
    handle = await env.client.start_workflow(
        ListRefreshWorkflow.run, request, id=f"refresh-{uuid.uuid4().hex[:8]}", task_queue=QUEUE
    )
    return await RECORDER.track(handle).result()


async def test_unchanged_lists_start_no_rescreening(env: WorkflowEnvironment) -> None:
    fake = FakeLists(changed=[])
    async with worker_for(env, fake):
        result = await refresh(env, ListRefreshInput())
    assert result.changed == []
    assert result.rescreen_workflow_id == ""
    assert fake.pages == []


async def test_a_refused_version_starts_no_rescreening(env: WorkflowEnvironment) -> None:
    # the activity refused the new sanctions version (#17): the current one stays, so there
    # is nothing to re-screen against
    fake = FakeLists(changed=[], refused={"sanctions": "shrink"})
    async with worker_for(env, fake):
        result = await refresh(env, ListRefreshInput())
    assert (result.changed, result.refused) == ([], {"sanctions": "shrink"})
    assert result.rescreen_workflow_id == ""
    assert fake.pages == []


async def test_a_new_version_rescreens_every_customer_once(env: WorkflowEnvironment) -> None:
    fake = FakeLists(changed=["OFAC-SDN"])
    async with worker_for(env, fake):
        result = await refresh(env, ListRefreshInput(rescreen_page_size=10))
        assert result.rescreen_workflow_id == rescreen_workflow_id(VERSIONS)
        rescreen = RECORDER.track(
            env.client.get_workflow_handle_for(
                RescreenCustomersWorkflow.run, result.rescreen_workflow_id
            )
        )
        totals = await rescreen.result()
    assert (totals.screened, totals.flagged) == (23, 2)
    assert [page.after_id for page in fake.pages] == ["", "cus_009", "cus_019"]


async def test_rescreening_continues_as_new_and_keeps_its_cursor_and_totals(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeLists()
    async with worker_for(env, fake):
        handle = await env.client.start_workflow(
            RescreenCustomersWorkflow.run,
            RescreenInput(dict(VERSIONS), page_size=4, pages_per_run=2),
            id=f"rescreen-{uuid.uuid4().hex[:8]}",
            task_queue=QUEUE,
        )
        RECORDER.track(handle)
        totals = await handle.result()  # follows the continue-as-new chain
    assert (totals.screened, totals.flagged) == (23, 2)
    # six pages of four (the last one short), two pages per run: three runs
    assert len(fake.pages) == 6
    assert [page.after_id for page in fake.pages] == [
        "",
        "cus_003",
        "cus_007",
        "cus_011",
        "cus_015",
        "cus_019",
    ]
    assert len({page.run_key for page in fake.pages}) == 1
    assert len(set(fake.run_ids)) == 3
