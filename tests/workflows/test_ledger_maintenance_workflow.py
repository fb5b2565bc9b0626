"""The ledger-maintenance workflow on the time-skipping test server, with fake activities:
every pass expires holds and observes; only the retention schedule's passes purge."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.workflows.support import role_workers, time_skipping_env
from workflows import steps
from workflows.ledger_maintenance import LedgerMaintenanceWorkflow
from workflows.models import (
    ExpireInput,
    ExpireResult,
    ObserveResult,
    PurgeInput,
    PurgeResult,
)
from workflows.steps import implements

QUEUE = "ledger-maintenance-test"


@dataclass
class FakeHousekeeping:
    """Records which steps ran."""

    ran: list[str] = field(default_factory=list)

    def activities(self) -> list[Callable[..., Any]]:
        @implements(steps.EXPIRE_PENDING_TRANSFERS)
        async def expire(request: ExpireInput) -> ExpireResult:
            self.ran.append("expire")
            return ExpireResult()

        @implements(steps.OBSERVE_PLATFORM)
        async def observe(request: ExpireInput) -> ObserveResult:
            self.ran.append("observe")
            return ObserveResult()

        @implements(steps.PURGE_EXPIRED_RECORDS)
        async def purge(request: PurgeInput) -> PurgeResult:
            self.ran.append("purge")
            return PurgeResult(idempotency_keys=3)

        return [expire, observe, purge]


env = pytest.fixture(scope="module")(time_skipping_env)


async def run_pass(env: WorkflowEnvironment, request: ExpireInput) -> list[str]:
    fake = FakeHousekeeping()
    async with role_workers(env, QUEUE, LedgerMaintenanceWorkflow, fake.activities()):
        await env.client.execute_workflow(
            LedgerMaintenanceWorkflow.run,
            request,
            id=f"maintenance-{uuid.uuid4().hex[:8]}",
            task_queue=QUEUE,
        )
    return fake.ran


async def test_an_ordinary_pass_never_purges(env: WorkflowEnvironment) -> None:
    assert await run_pass(env, ExpireInput()) == ["expire", "observe"]


async def test_the_retention_schedules_pass_purges_after_its_housekeeping(
    env: WorkflowEnvironment,
) -> None:
    assert await run_pass(env, ExpireInput(purge_expired=True)) == ["expire", "observe", "purge"]
