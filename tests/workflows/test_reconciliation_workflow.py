"""The reconciliation workflow on the time-skipping test server, with a fake statement check."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.workflows.recording import HistoryRecorder
from tests.workflows.support import role_workers, time_skipping_env
from workflows import steps
from workflows.models import ReconcileInput, ReconcileRailInput, ReconcileResult
from workflows.reconciliation import ReconciliationWorkflow
from workflows.steps import implements

QUEUE = "reconciliation-test"
RECORDER = HistoryRecorder("reconciliation")
record_histories = RECORDER.fixture()


@dataclass
class FakeStatements:
    """Reconciles whatever it is asked for; the bank is down for its first `outages` calls."""

    outages: int = 0
    asked: list[ReconcileRailInput] = field(default_factory=list)

    def activities(self) -> list[Callable[..., Any]]:
        @implements(steps.RECONCILE_STATEMENT)
        async def reconcile(request: ReconcileRailInput) -> ReconcileResult:
            if self.outages > 0:
                self.outages -= 1
                raise RuntimeError("bank statement service unavailable")
            self.asked.append(request)
            return ReconcileResult(
                f"rec_{request.rail}", request.rail, request.statement_date, 3, 0
            )

        return [reconcile]


env = pytest.fixture(scope="module")(time_skipping_env)


def worker_for(
    env: WorkflowEnvironment, fake: FakeStatements
) -> contextlib.AbstractAsyncContextManager[None]:
    return role_workers(env, QUEUE, ReconciliationWorkflow, fake.activities())


async def reconcile(env: WorkflowEnvironment, request: ReconcileInput) -> list[ReconcileResult]:
    handle = await env.client.start_workflow(
        ReconciliationWorkflow.run,
        request,
        id=f"reconciliation-{uuid.uuid4().hex[:8]}",
        task_queue=QUEUE,
    )
    return await RECORDER.track(handle).result()


async def test_every_rail_of_the_date_is_reconciled(env: WorkflowEnvironment) -> None:
    fake = FakeStatements()
    async with worker_for(env, fake):
        results = await reconcile(env, ReconcileInput("2026-11-27"))
    assert [(r.rail, r.statement_date) for r in results] == [
        ("sepa", "2026-11-27"),
        ("ach", "2026-11-27"),
    ]


async def test_no_date_means_yesterday_and_a_bank_outage_is_waited_out(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeStatements(outages=2)
    async with worker_for(env, fake):
        yesterday = (await env.get_current_time() - timedelta(days=1)).date().isoformat()
        results = await reconcile(env, ReconcileInput(rails=["sepa"]))
    assert [(r.rail, r.statement_date) for r in results] == [("sepa", yesterday)]
    assert fake.asked == [ReconcileRailInput(yesterday, "sepa")]
