"""A payment schedule's run on the time-skipping test server, its activity faked (the real one
runs against PostgreSQL and a real Temporal Schedule in
tests/integration/test_payment_schedules.py): the run asks for the payment of its nominal
time, taken from its input or, as a Schedule starts it, from its workflow id."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.workflows.recording import HistoryRecorder
from tests.workflows.support import role_workers, time_skipping_env
from workflows.models import ScheduledPaymentInput, ScheduledPaymentResult, ScheduleRunInput
from workflows.scheduled_payment import ScheduledPaymentRunWorkflow
from workflows.steps import MAKE_SCHEDULED_PAYMENT, implements

QUEUE = "scheduled-payment-tests"

RECORDER = HistoryRecorder("scheduled_payment")
record_histories = RECORDER.fixture()


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async for environment in time_skipping_env():
        yield environment


async def run_twice(env: WorkflowEnvironment, ids: list[str], run: ScheduleRunInput) -> list[str]:
    """Run the workflow under each id; returns the nominal times the activity was asked for."""
    asked: list[str] = []

    @implements(MAKE_SCHEDULED_PAYMENT)
    async def make(request: ScheduledPaymentInput) -> ScheduledPaymentResult:
        asked.append(request.nominal_time)
        return ScheduledPaymentResult(payment_id=f"pay_{request.nominal_time}")

    async with role_workers(env, QUEUE, ScheduledPaymentRunWorkflow, [make]):
        for workflow_id in ids:
            handle = await env.client.start_workflow(
                ScheduledPaymentRunWorkflow.run, run, id=workflow_id, task_queue=QUEUE
            )
            RECORDER.track(handle)
            result = await handle.result()
            assert result.payment_id == f"pay_{asked[-1]}"
    return asked


async def test_a_run_started_by_a_schedule_reads_its_nominal_time_from_its_id(
    env: WorkflowEnvironment,
) -> None:
    schedule_id = f"psch_{uuid.uuid4().hex[:12]}"
    asked = await run_twice(
        env, [f"{schedule_id}-run-2026-12-07T09:00:00Z"], ScheduleRunInput(schedule_id)
    )
    assert asked == ["2026-12-07T09:00:00+00:00"]


async def test_two_runs_for_one_nominal_time_ask_for_the_same_payment(
    env: WorkflowEnvironment,
) -> None:
    schedule_id = f"psch_{uuid.uuid4().hex[:12]}"
    nominal = "2026-12-07T09:00:00+00:00"
    asked = await run_twice(
        env,
        [f"{schedule_id}-a", f"{schedule_id}-b"],
        ScheduleRunInput(schedule_id, nominal),
    )
    assert asked == [nominal, nominal]
