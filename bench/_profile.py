"""Where a workflow's time goes: its history's timeline, CPU per process, PostgreSQL time.

- `timeline` cuts one workflow history into the segments Temporal records: workflow tasks
  waiting for a worker and running, each activity waiting for a worker and running, and
  what is left (waiting for a signal or timer, or for the server between two events).
- `CpuMeter` reads the CPU seconds each process of the stack used (from /proc), so a run
  can say how many CPU milliseconds one payment costs in the API, the worker, Temporal, …
- `pg_counters` reads PostgreSQL's per-database counters (time spent executing statements,
  time held idle inside a transaction, commits, rows written).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

from ops.histories import local_activity_name

CLK_TCK = os.sysconf("SC_CLK_TCK")
NAN = float("nan")


@dataclass(frozen=True)
class ActivitySpan:
    """One activity of a workflow: how long it waited for a worker, how long it ran.

    A local activity never waits for a worker and runs inside a workflow task (its time is
    in "workflow tasks running"; its history has no start time), so sums leave it out.
    """

    name: str
    wait_ms: float
    run_ms: float
    local: bool = False


@dataclass
class Timeline:
    """One workflow's time in milliseconds, by segment."""

    total_ms: float
    workflow_task_wait_ms: float = 0.0
    workflow_task_run_ms: float = 0.0
    workflow_tasks: int = 0
    # per activity, in the order the workflow ran them
    activities: list[ActivitySpan] = field(default_factory=list)
    signals: int = 0
    timers: int = 0
    # how much of the total some task covered (segments overlap when a signal's workflow
    # task runs while an activity does)
    covered_ms: float = 0.0

    @property
    def activity_wait_ms(self) -> float:
        """Time activities waited for a worker, summed."""
        return sum(span.wait_ms for span in self.activities if not span.local)

    @property
    def activity_run_ms(self) -> float:
        """Time activities ran outside workflow tasks, summed."""
        return sum(span.run_ms for span in self.activities if not span.local)

    @property
    def other_ms(self) -> float:
        """What no task accounts for: waiting for signals, timers, the server itself."""
        return max(0.0, self.total_ms - self.covered_ms)


def _ms(event: HistoryEvent) -> float:
    return event.event_time.ToNanoseconds() / 1e6


def _union_ms(intervals: list[tuple[float, float]]) -> float:
    covered, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            covered += end - max(start, reach)
            reach = end
    return covered


def timeline(events: Sequence[HistoryEvent]) -> Timeline:
    """Cut a closed workflow's history into segments: tasks waiting, tasks running, the rest."""
    result = Timeline(total_ms=_ms(events[-1]) - _ms(events[0]))
    intervals: list[tuple[float, float]] = []
    by_id = {event.event_id: event for event in events}
    # a workflow task's events follow each other (scheduled, started, completed), so the
    # latest ones stand in where a server leaves the ids out (the time-skipping test server)
    last_scheduled: HistoryEvent | None = None
    last_started: HistoryEvent | None = None
    for event in events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            last_scheduled = event
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            attrs = event.workflow_task_started_event_attributes
            scheduled = by_id.get(attrs.scheduled_event_id, last_scheduled)
            if scheduled is not None:
                result.workflow_task_wait_ms += _ms(event) - _ms(scheduled)
                intervals.append((_ms(scheduled), _ms(event)))
            result.workflow_tasks += 1
            last_started = event
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            attrs_c = event.workflow_task_completed_event_attributes
            started_task = by_id.get(attrs_c.started_event_id, last_started)
            if started_task is not None:
                result.workflow_task_run_ms += _ms(event) - _ms(started_task)
                intervals.append((_ms(started_task), _ms(event)))
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = event.activity_task_completed_event_attributes
            scheduled = by_id[done.scheduled_event_id]
            started = by_id[done.started_event_id]
            result.activities.append(
                ActivitySpan(
                    scheduled.activity_task_scheduled_event_attributes.activity_type.name,
                    _ms(started) - _ms(scheduled),
                    _ms(event) - _ms(started),
                )
            )
            intervals.append((_ms(scheduled), _ms(event)))
        elif (local := local_activity_name(event)) is not None:
            # a local activity runs inside a workflow task; its marker has no start time
            result.activities.append(ActivitySpan(local, 0.0, NAN, True))
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            result.signals += 1
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            result.timers += 1
    result.covered_ms = _union_ms(intervals)
    return result


def median(values: Iterable[float]) -> float:
    """The median (NaN when empty)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def mean(values: Iterable[float]) -> float:
    """The mean (NaN when empty)."""
    items = list(values)
    return sum(items) / len(items) if items else float("nan")


def breakdown_table(named: Mapping[str, Sequence[Timeline]]) -> str:
    """Mean milliseconds per workflow in each segment, one column per system."""
    names = list(named)
    rows: list[tuple[str, list[float]]] = [
        ("end to end (first to last event)", [mean(t.total_ms for t in named[n]) for n in names]),
        (
            "workflow tasks waiting for a worker",
            [mean(t.workflow_task_wait_ms for t in named[n]) for n in names],
        ),
        ("workflow tasks running", [mean(t.workflow_task_run_ms for t in named[n]) for n in names]),
        (
            "activities waiting for a worker",
            [mean(t.activity_wait_ms for t in named[n]) for n in names],
        ),
        ("activities running", [mean(t.activity_run_ms for t in named[n]) for n in names]),
        (
            "the rest (signal/timer wait, server)",
            [mean(t.other_ms for t in named[n]) for n in names],
        ),
        ("workflow tasks (count)", [mean(t.workflow_tasks for t in named[n]) for n in names]),
        ("signals (count)", [mean(t.signals for t in named[n]) for n in names]),
        ("timers (count)", [mean(t.timers for t in named[n]) for n in names]),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"{'mean per workflow, ms':<{width}} | " + " | ".join(f"{n:>9}" for n in names)]
    for label, values in rows:
        lines.append(f"{label:<{width}} | " + " | ".join(f"{v:>9.1f}" for v in values))
    return "\n".join(lines)


def steps_table(named: Mapping[str, Sequence[Timeline]]) -> str:
    """Per activity (in order): median wait for a worker and median run time, per system."""
    names = list(named)
    per_system: dict[str, dict[int, list[ActivitySpan]]] = {}
    for name in names:
        steps: dict[int, list[ActivitySpan]] = defaultdict(list)
        for t in named[name]:
            for index, step in enumerate(t.activities):
                steps[index].append(step)
        per_system[name] = steps
    count = max((len(s) for s in per_system.values()), default=0)
    header = f"{'#':>2} {'activity':<24}" + "".join(
        f" | {n + ' wait':>13} {n + ' run':>12}" for n in names
    )
    lines = [header + "   (median ms)"]
    for index in range(count):
        label = next(
            (s[index][0].name for s in per_system.values() if s.get(index)),
            "?",
        )
        cells = ""
        for name in names:
            samples = per_system[name].get(index, [])
            local = bool(samples) and all(span.local for span in samples)
            if local:
                cells += f" | {'local':>13} {'-':>12}"
            else:
                cells += (
                    f" | {median(span.wait_ms for span in samples):>13.1f}"
                    f" {median(span.run_ms for span in samples):>12.1f}"
                )
        lines.append(f"{index:>2} {label:<24}{cells}")
    return "\n".join(lines)


# --- CPU per process -------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree[ppid].append(int(entry.name))
    return tree


def _cpu_seconds(pid: int, tree: Mapping[int, list[int]]) -> float:
    """CPU of a process, its live descendants and the children it has reaped."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime, stime, cutime, cstime are fields 14-17 (1-based); after ")" they start at 11
    ticks = sum(int(value) for value in fields[11:15])
    return ticks / CLK_TCK + sum(_cpu_seconds(child, tree) for child in tree.get(pid, []))


class CpuMeter:
    """CPU seconds per named process tree, read on demand, plus this process on its own.

    This process is the parent of every process it started, so it is read without its
    descendants (`time.process_time`).
    """

    def __init__(self, pids: Mapping[str, int], self_name: str = "bench client") -> None:
        self.pids = dict(pids)
        self.self_name = self_name

    def read(self) -> dict[str, float]:
        """Current cumulative CPU seconds per name."""
        tree = _children()
        used = {name: _cpu_seconds(pid, tree) for name, pid in self.pids.items()}
        used[self.self_name] = time.process_time()
        return used


def cpu_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """CPU seconds used between two readings."""
    return {name: after[name] - before.get(name, 0.0) for name in after}


def postmaster_pid(pgdata: Path) -> int | None:
    """PostgreSQL's main process, from its pid file."""
    try:
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# --- PostgreSQL ------------------------------------------------------------------------

PG_COUNTERS = text(
    """
    SELECT active_time, idle_in_transaction_time, xact_commit, xact_rollback,
           tup_inserted + tup_updated + tup_deleted AS rows_written
    FROM pg_stat_database WHERE datname = current_database()
    """
)


async def pg_counters(engine: AsyncEngine) -> dict[str, float]:
    """PostgreSQL's cumulative counters for the platform's database."""
    async with engine.connect() as conn:
        # statistics are cached per transaction; a fresh snapshot each time
        await conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        row = (await conn.execute(PG_COUNTERS)).one()
    return {key: float(value or 0) for key, value in row._mapping.items()}


ACTIVITY_SAMPLE = text(
    """
    SELECT state, coalesce(wait_event_type, '') AS wait,
           left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS query
    FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'
    """
)


class SessionSampler:
    """Samples what PostgreSQL's sessions are doing, to see where database time goes.

    Every `period` seconds it records each busy session's state (`active`, or `idle in
    transaction`: a transaction held open while the client does something else) and the
    statement it runs or ran last. Count times period is the session-seconds spent there.
    """

    def __init__(self, engine: AsyncEngine, period: float = 0.1) -> None:
        self.engine = engine
        self.period = period
        self.samples: Counter[tuple[str, str, str]] = Counter()
        self.ticks = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with self.engine.connect() as conn:
            while True:
                rows = (await conn.execute(ACTIVITY_SAMPLE)).all()
                await conn.rollback()
                self.ticks += 1
                for state, wait, query in rows:
                    self.samples[(state, wait, query)] += 1
                await asyncio.sleep(self.period)

    def start(self) -> None:
        """Start sampling in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def table(self, workflows: int, top: int = 12) -> str:
        """Session-milliseconds per workflow by state and statement, largest first."""
        lines = [f"{'ms/payment':>10}  {'state':<20} {'wait':<8} statement (last run)"]
        for (state, wait, query), count in self.samples.most_common(top):
            per = count * self.period * 1e3 / max(1, workflows)
            lines.append(f"{per:>10.1f}  {state:<20} {wait:<8} {query}")
        return "\n".join(lines)
