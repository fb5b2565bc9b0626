"""The benchmark's baseline: bare Temporal doing the same dance as a payment, and no work.

`BareWorkflow` runs the activities a settled payment runs, in the same order (the bench
reads them off a real payment's history, see `Shape`), each a do-nothing. The activity at
the rail submission's place sends the workflow as many signals as the bank's callbacks do,
from outside the workflow as the bank does; the workflow waits for the last of them at the
same place and in the same way (a condition with a timer as fallback) as the payment does.

What it leaves out is exactly what the payment platform adds: the API, the database, the
bank, payload encryption, search attributes, interceptors and the activity bodies. Variants
add some of them back (search attributes, encryption, one task queue per role) to measure
what each costs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import WorkflowHandle
from temporalio.common import RawValue, RetryPolicy, SearchAttributeKey

BARE_WORKFLOW = "BenchBare"
SIGNAL = "bench_event"
# the payment's status attribute (registered by the dev stack), for the variant that upserts
BARE_STATUS = SearchAttributeKey.for_keyword("PaymentStatus")
# the same as the payment's steps (workflows/payment.py)
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)
STEP_TIMEOUT = timedelta(seconds=10)


@dataclass
class Shape:
    """A payment's path as Temporal sees it: which activities, where the signals come in."""

    activities: list[str]
    # the task queue of each activity (all the bare worker's own queue, or one per role)
    task_queues: list[str]
    # index of the activity whose completion makes the outside world send `signals` signals
    # (-1: none), and index of the activity before which the workflow waits for the last one
    trigger: int = -1
    signals: int = 0
    wait_before: int = -1
    # the payment's fallback poll interval: a timer when the signal is not there yet
    wait_timeout_seconds: float = 30.0
    # variant: after which activities to upsert a status search attribute, as the payment
    # does after recording each status change (empty: none, the bare default)
    upsert_after: list[int] = field(default_factory=list)
    # variant: which activities run as local activities (in the workflow's worker, recorded
    # as a marker with the next workflow task instead of three events and a task of their own)
    local: list[int] = field(default_factory=list)
    # variant: `workflow.patched` calls, each before the activity of that index (the number
    # of activities: after the last), as the payment asks its patches; each new one is a
    # marker and a TemporalChangeVersion upsert in the history (empty: none)
    patch_before: list[int] = field(default_factory=list)


@workflow.defn(name=BARE_WORKFLOW)
class BareWorkflow:
    """Do-nothing activities and signals in the shape of a settled payment."""

    def __init__(self) -> None:
        self._signals = 0

    @workflow.run
    async def run(self, shape: Shape) -> int:
        """Run the shape; returns how many signals arrived."""
        for index, (name, queue) in enumerate(
            zip(shape.activities, shape.task_queues, strict=True)
        ):
            if index == shape.wait_before and shape.signals:
                await self._await_signals(shape)
            self._patch(shape, index)
            argument = shape.signals if index == shape.trigger else 0
            if index in shape.local:
                await workflow.execute_local_activity(
                    name, argument, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY
                )
            else:
                await workflow.execute_activity(
                    name,
                    argument,
                    task_queue=queue,
                    start_to_close_timeout=STEP_TIMEOUT,
                    retry_policy=STEP_RETRY,
                )
            if index in shape.upsert_after:
                workflow.upsert_search_attributes([BARE_STATUS.value_set(f"step-{index}")])
        self._patch(shape, len(shape.activities))
        return self._signals

    @staticmethod
    def _patch(shape: Shape, index: int) -> None:
        for number, before in enumerate(shape.patch_before):
            if before == index:
                workflow.patched(f"bench-patch-{number}")

    async def _await_signals(self, shape: Shape) -> None:
        # as the payment waits for the rail: a condition, a timer when it is not met yet
        while self._signals < shape.signals:
            try:
                await workflow.wait_condition(
                    lambda: self._signals >= shape.signals,
                    timeout=timedelta(seconds=shape.wait_timeout_seconds),
                )
            except TimeoutError:
                workflow.logger.warning("bare workflow still waits for its signals")

    @workflow.signal(name=SIGNAL)
    def event(self) -> None:
        """What the bank's callback is to the payment."""
        self._signals += 1


# signals still being sent; kept referenced so that the tasks are not collected mid-flight
_in_flight: set[asyncio.Task[None]] = set()


@activity.defn(dynamic=True)
async def do_nothing(args: Sequence[RawValue]) -> None:
    """Any activity name: returns at once; when told to, has the workflow signalled.

    The signals leave after the activity completes, as the bank's callbacks leave after it
    has accepted the submission.
    """
    signals = activity.payload_converter().from_payload(args[0].payload, int) if args else 0
    if signals:
        handle = activity.client().get_workflow_handle(activity.info().workflow_id or "")
        task = asyncio.create_task(_signal(handle, signals))
        _in_flight.add(task)
        task.add_done_callback(_in_flight.discard)


async def _signal(handle: WorkflowHandle[Any, Any], count: int) -> None:
    for _ in range(count):
        await handle.signal(SIGNAL)
