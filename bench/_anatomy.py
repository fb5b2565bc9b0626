"""What Temporal stores and does per workflow, read off its history: events by kind, workflow
tasks, markers, search-attribute upserts, payload bytes by what carries them, and the RPCs
that history implies for the worker and the callers.

Temporal's CPU per workflow follows these counts: every event is a row the history service
appends (in the transaction of the task that produced it), every workflow task is a
matching dispatch, a poll and a completion, every upsert is a visibility write, and payload
bytes are what it stores and ships to workers. `make bench` prints the table for each system
side by side, so the payment's extra work shows up against bare+local's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from ops.histories import LOCAL_ACTIVITY_MARKER

PATCH_MARKER = "core_patch"
# the search attribute the SDK's core upserts on every first `workflow.patched` of a run
CHANGE_VERSION = "TemporalChangeVersion"


def payload_bytes(message: Message) -> int:
    """Bytes of every `Payload` inside `message` (data and metadata, as stored)."""
    if isinstance(message, Payload):
        return message.ByteSize()
    total = 0
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        if descriptor.is_repeated:
            items: Iterable[object] = (
                value.values() if descriptor.message_type.GetOptions().map_entry else value
            )
            total += sum(payload_bytes(item) for item in items if isinstance(item, Message))
        else:
            total += payload_bytes(value)
    return total


@dataclass
class Anatomy:
    """One workflow's history, counted."""

    events: int = 0
    history_bytes: int = 0
    workflow_tasks: int = 0
    activities: int = 0
    local_activities: int = 0
    patch_markers: int = 0
    upserts_change_version: int = 0
    upserts_custom: int = 0
    signals: int = 0
    timers: int = 0
    # payload bytes by what carries them
    payloads: Counter[str] = field(default_factory=Counter)

    @property
    def upserts(self) -> int:
        """Every UpsertWorkflowSearchAttributes event."""
        return self.upserts_change_version + self.upserts_custom

    @property
    def worker_rpcs(self) -> int:
        """RPCs the worker makes for this history: a poll and a completion per workflow task,
        one completion per ordinary activity (dispatched eagerly with the task that scheduled
        it, so no poll of its own; a poll more when it is not)."""
        return 2 * self.workflow_tasks + self.activities


def anatomy(events: Sequence[HistoryEvent]) -> Anatomy:
    """Count one closed workflow's history."""
    result = Anatomy(events=len(events))
    for event in events:
        result.history_bytes += event.ByteSize()
        kind = event.event_type
        carried = payload_bytes(event)
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            result.workflow_tasks += 1
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            result.activities += 1
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            result.payloads[f"activity input: {name}"] += carried
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            result.payloads["activity results"] += carried
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes.marker_name
            if marker == PATCH_MARKER:
                result.patch_markers += 1
                result.payloads["patch markers"] += carried
            elif marker == LOCAL_ACTIVITY_MARKER:
                result.local_activities += 1
                result.payloads["local activity markers (input + result)"] += carried
        elif kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes
            if CHANGE_VERSION in fields.search_attributes.indexed_fields:
                result.upserts_change_version += 1
            else:
                result.upserts_custom += 1
            result.payloads["search attribute upserts"] += carried
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            result.signals += 1
            result.payloads["signals"] += carried
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            result.timers += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            result.payloads["start input + search attributes"] += carried
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            result.payloads["workflow result"] += carried
        elif carried:
            result.payloads["other"] += carried
    return result


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else float("nan")


def anatomy_table(named: Mapping[str, Sequence[Anatomy]]) -> str:
    """Mean counts and payload bytes per workflow, one column per system."""
    names = list(named)
    counted: list[tuple[str, str]] = [
        ("history events", "events"),
        ("history bytes", "history_bytes"),
        ("workflow tasks", "workflow_tasks"),
        ("activities (ordinary)", "activities"),
        ("local activities (markers)", "local_activities"),
        ("patch markers", "patch_markers"),
        (f"upserts: {CHANGE_VERSION}", "upserts_change_version"),
        ("upserts: the workflow's own", "upserts_custom"),
        ("signals", "signals"),
        ("timers", "timers"),
        ("worker RPCs (polls + completions)", "worker_rpcs"),
    ]
    kinds = sorted({kind for items in named.values() for a in items for kind in a.payloads})
    rows: list[tuple[str, list[float]]] = [
        (label, [_mean(getattr(a, attr) for a in named[n]) for n in names])
        for label, attr in counted
    ]
    rows.append(
        ("payload bytes, all", [_mean(sum(a.payloads.values()) for a in named[n]) for n in names])
    )
    rows += [
        (f"  {kind}", [_mean(a.payloads.get(kind, 0) for a in named[n]) for n in names])
        for kind in kinds
    ]
    width = max(len(label) for label, _ in rows)
    column = max(9, *(len(n) for n in names))
    lines = [f"{'mean per workflow':<{width}} | " + " | ".join(f"{n:>{column}}" for n in names)]
    for label, values in rows:
        lines.append(f"{label:<{width}} | " + " | ".join(f"{v:>{column}.1f}" for v in values))
    return "\n".join(lines)
