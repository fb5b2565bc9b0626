"""The ledger-maintenance workflow on the time-skipping test server, with fake activities:
every pass expires holds and observes; only the retention schedule's passes purge."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from ops.devstack import binary
from workflows import steps
from workflows.ledger_maintenance import LedgerMaintenanceWorkflow
from workflows.models import (
    ExpireInput,
    ExpireResult,
    ObserveResult,
    PurgeInput,
    PurgeResult,
)
from workflows.queues import ROLES, queue_for
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


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    yield environment
    await environment.shutdown()


async def run_pass(env: WorkflowEnvironment, request: ExpireInput) -> list[str]:
    fake = FakeHousekeeping()
    async with contextlib.AsyncExitStack() as stack:
        for role in ROLES:
            await stack.enter_async_context(
                Worker(
                    env.client,
                    task_queue=queue_for(QUEUE, role),
                    workflows=[LedgerMaintenanceWorkflow] if role == "payments" else [],
                    activities=fake.activities(),
                )
            )
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
