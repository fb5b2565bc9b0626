"""The partition-maintenance workflow on the time-skipping test server, with a fake
activity: a pass runs `ensure_partitions` once and answers what it created."""

from __future__ import annotations

import uuid

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.workflows.support import role_workers, time_skipping_env
from workflows import steps
from workflows.models import PartitionInput, PartitionResult
from workflows.partition_maintenance import PartitionMaintenanceWorkflow
from workflows.steps import implements

QUEUE = "partition-maintenance-test"

env = pytest.fixture(scope="module")(time_skipping_env)


async def test_a_pass_creates_the_missing_months_once(env: WorkflowEnvironment) -> None:
    calls: list[PartitionInput] = []

    @implements(steps.ENSURE_PARTITIONS)
    async def ensure(request: PartitionInput) -> PartitionResult:
        calls.append(request)
        return PartitionResult(created=5)

    async with role_workers(env, QUEUE, PartitionMaintenanceWorkflow, [ensure]):
        result = await env.client.execute_workflow(
            PartitionMaintenanceWorkflow.run,
            PartitionInput(),
            id=f"partitions-{uuid.uuid4().hex[:8]}",
            task_queue=QUEUE,
        )
    assert result == PartitionResult(created=5)
    assert len(calls) == 1
