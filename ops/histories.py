"""Read the steps a workflow took off its history: ordinary activities and local ones.

An ordinary activity leaves an ActivityTaskScheduled event; a local activity leaves only a
marker (`core_local_activity`) whose `data` payload names it. Tests pin which steps run
where with this, and the benchmark gives its bare workflow the same steps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from temporalio.api.enums.v1 import EventType

LOCAL_ACTIVITY_MARKER = "core_local_activity"


@dataclass(frozen=True)
class Step:
    """One activity of a history, in the order the workflow scheduled them."""

    activity: str
    local: bool
    task_queue: str = ""  # ordinary activities only


def activity_steps(history: Any) -> list[Step]:
    """Every activity the history shows, ordinary and local, in order."""
    steps: list[Step] = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled = event.activity_task_scheduled_event_attributes
            steps.append(Step(scheduled.activity_type.name, False, scheduled.task_queue.name))
        elif (name := local_activity_name(event)) is not None:
            steps.append(Step(name, True))
    return steps


def local_activity_name(event: Any) -> str | None:
    """The activity a local-activity marker records; None for any other event."""
    if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
        return None
    marker = event.marker_recorded_event_attributes
    if marker.marker_name != LOCAL_ACTIVITY_MARKER:
        return None
    # written by the SDK's core, never through the payload codec
    name: str = json.loads(marker.details["data"].payloads[0].data)["activity_type"]
    return name
