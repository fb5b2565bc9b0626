"""The benchmark's baseline workflow does the payment's dance: its activities, its signals."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Sequence

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.common import RawValue
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from kernel.settings import PROJECT_ROOT
from ops.devstack import binary

sys.path.insert(0, str(PROJECT_ROOT / "bench"))

from bare_workflow import BareWorkflow, Shape, do_nothing

STEPS = ["check_debtor_kyc", "hold_funds", "submit_to_rail", "record_payment_status", "post_hold"]


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    yield environment
    await environment.shutdown()


async def run_shape(env: WorkflowEnvironment, shape: Shape, queue: str) -> list[str]:
    """Run the shape; return the activity types in the order the history scheduled them."""
    async with Worker(
        env.client, task_queue=queue, workflows=[BareWorkflow], activities=[do_nothing]
    ):
        handle = await env.client.start_workflow(
            BareWorkflow.run, shape, id=f"bare-{uuid.uuid4().hex}", task_queue=queue
        )
        assert await handle.result() == shape.signals
        history = await handle.fetch_history()
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


async def test_runs_the_activities_in_order_and_waits_for_every_signal(
    env: WorkflowEnvironment,
) -> None:
    queue = f"bare-{uuid.uuid4().hex}"
    shape = Shape(STEPS, [queue] * len(STEPS), trigger=2, signals=2, wait_before=4)

    assert await run_shape(env, shape, queue) == STEPS


async def test_local_activities_leave_no_activity_task_in_the_history(
    env: WorkflowEnvironment,
) -> None:
    queue = f"bare-{uuid.uuid4().hex}"
    shape = Shape(STEPS, [queue] * len(STEPS), trigger=2, signals=1, wait_before=4, local=[3])

    assert await run_shape(env, shape, queue) == [s for s in STEPS if s != "record_payment_status"]


async def test_the_trigger_activity_receives_the_signal_count(env: WorkflowEnvironment) -> None:
    seen: list[int] = []

    @activity.defn(dynamic=True)
    async def spy(args: Sequence[RawValue]) -> None:
        seen.append(activity.payload_converter().from_payload(args[0].payload, int))
        await do_nothing(args)

    queue = f"bare-{uuid.uuid4().hex}"
    shape = Shape(STEPS, [queue] * len(STEPS), trigger=2, signals=3, wait_before=4)
    async with Worker(env.client, task_queue=queue, workflows=[BareWorkflow], activities=[spy]):
        handle = await env.client.start_workflow(
            BareWorkflow.run, shape, id=f"bare-{uuid.uuid4().hex}", task_queue=queue
        )
        assert await handle.result() == 3
    assert seen == [0, 0, 3, 0, 0]
