"""Orchestration cost: full payments through the API against bare Temporal, side by side.

    make bench      (or: .venv/bin/python bench/workflow_bench.py --payments 120 --concurrency 8)
    make bench BENCH_ARGS="--variants bare+queues,bare+attrs,bare+codec,bare+local"

One run, one set of servers (a private stack on free ports, or `--connect` to running ones):

- (a) bare:    `BenchBare` (bench/bare_workflow.py) started with `client.start_workflow`:
               the same activities as a settled SEPA payment, in the same order, each a
               do-nothing; the same number of signals at the same place. Its shape is read
               off the history of a real payment made first (calibration).
- (b) payment: `POST /v1/payments` (SEPA, to a creditor the bank accepts) and the payment
               workflow to `settled`, with every guarantee on: idempotency, ledger hold and
               post, screening, limits, status records, audit, encryption.

`--variants` adds bare systems that each put back one thing the platform does (one task
queue per role, search attributes, payload encryption, local activities where the payment
runs them), to measure what it costs; `bare+local` runs by default, and is the comparison
the goal of issue #20 is stated against (the plain bare is still run and printed).
Every system is a closed loop at the same concurrency. Rounds
alternate (a-b, b-a …; with variants, rotated and reversed) so that noise on the shared
2-core machine hits all alike; throughput is the median of the rounds, counted while every
lane is busy, and latency percentiles pool every round. CPU per workflow comes from /proc
for every process of a private stack, less each process's idle rate.

The bank settles at once (`banksim_settle_delay_seconds=0` on the private stack), so the
payment's time is the platform's own. End-to-end latency is from the start request to the
workflow's result, for both. Afterwards the run profiles where the time goes (histories,
CPU per process, PostgreSQL sessions) and checks the books (`ledger verify`).
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _anatomy
import _profile
import _stack
import httpx
from bare_worker import READY, bare_client
from bare_workflow import BARE_WORKFLOW, Shape
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from kernel.db import dispose_engines, get_engine
from kernel.settings import Settings
from kernel.temporal_client import connect, exit_without_finalizing
from ledger import verify_ledger
from ops.devstack import settings_env
from ops.histories import activity_steps, local_activity_name
from workflows import search_attributes as sa
from workflows.queues import queue_for
from workflows.steps import ACTIVITY_ROLE

BENCH_DIR = Path(__file__).resolve().parent
AMOUNT = 100  # 1.00 EUR
# each account's deposit: below the four-eyes threshold (100,000.00), and far above what a
# run spends from it
FUNDING = 5_000_000
# what the API sets on a payment's start, for the bare variant with search attributes
BARE_START_ATTRIBUTES = TypedSearchAttributes(
    [
        SearchAttributePair(sa.PAYMENT_STATUS, "processing"),
        SearchAttributePair(sa.PAYMENT_RAIL, "sepa"),
        SearchAttributePair(sa.TENANT_ID, "ten_bench"),
        SearchAttributePair(sa.CUSTOMER_ID, "cus_bench"),
        SearchAttributePair(sa.AMOUNT_MINOR, AMOUNT),
        SearchAttributePair(sa.CURRENCY, "EUR"),
    ]
)
CREDITOR = {"name": "Erika Mustermann", "country": "DE", "iban": "DE89370400440532013000"}
PAYMENT = "payment"
CLIENT = "bench client"
# a workflow not done after this long means a broken setup, not a slow one
RESULT_TIMEOUT = 300.0
# PostgreSQL publishes a busy backend's counters at most every second, an idle one's after
# ten: wait this long before reading them
PG_STATS_SETTLE_SECONDS = 11.0


@dataclass
class Sample:
    """One workflow: how long the start took, and how long until its result."""

    workflow_id: str
    start_ms: float
    end_to_end_ms: float
    outcome: str


@dataclass
class Round:
    """One system's run of `len(samples)` workflows at the bench's concurrency."""

    system: str
    seconds: float
    samples: list[Sample] = field(default_factory=list)
    # seconds from the round's start to each completion, in order
    completions: list[float] = field(default_factory=list)
    concurrency: int = 1

    @property
    def per_second(self) -> float:
        """Completions per second while every lane was busy.

        Up to the completion that leaves fewer workflows than lanes, every lane has one in
        flight; the tail after it runs part-empty and would understate the rate.
        """
        steady = len(self.completions) - self.concurrency
        if steady < self.concurrency:
            return len(self.samples) / self.seconds
        return steady / self.completions[steady - 1]


Runner = Callable[[int], Awaitable[Sample]]


async def closed_loop(system: str, count: int, concurrency: int, one: Runner) -> Round:
    """Run `count` workflows, `concurrency` at a time, each starting when one finishes."""
    pending = iter(range(count))
    samples: list[Sample] = []
    completions: list[float] = []
    started = time.perf_counter()

    async def lane() -> None:
        for index in pending:
            samples.append(await one(index))
            completions.append(time.perf_counter() - started)

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return Round(system, time.perf_counter() - started, samples, completions, concurrency)


# --- calibration: the payment's shape ----------------------------------------------------


def shape_of(
    history: Any,
    base_queue: str,
    split_queues: bool,
    search_attributes: bool,
    local_as_payment: bool = False,
    patches: bool = False,
) -> Shape:
    """The bare shape of a settled payment's history (see `Shape`).

    Every activity the payment ran counts, local ones too: the bare workflow runs them all
    as ordinary activities (plain Temporal), unless the variant names some as `local`.
    """
    steps = activity_steps(history)
    names = [step.activity for step in steps]
    signals = sum(
        event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        for event in history.events
    )
    trigger = names.index("submit_to_rail") if "submit_to_rail" in names else -1
    # the payment records `submitted`, then waits for the rail before its ledger step
    wait_before = next(
        (
            i
            for i in range(trigger + 1, len(names))
            if trigger >= 0 and names[i] != "record_payment_status"
        ),
        -1,
    )
    queues = [
        queue_for(base_queue, ACTIVITY_ROLE.get(name, "payments")) if split_queues else base_queue
        for name in names
    ]
    upserts = (
        [i for i, name in enumerate(names) if name == "record_payment_status"]
        if search_attributes
        else []
    )
    return Shape(
        names,
        queues,
        trigger,
        signals if trigger >= 0 else 0,
        wait_before,
        upsert_after=upserts,
        local=[i for i, step in enumerate(steps) if step.local] if local_as_payment else [],
        patch_before=patch_positions(history) if patches else [],
    )


def patch_positions(history: Any) -> list[int]:
    """For each patch marker of the history, how many activities (ordinary and local) the
    workflow had scheduled before it: where the bare workflow asks its own patch."""
    positions: list[int] = []
    scheduled = 0
    for event in history.events:
        marker = event.marker_recorded_event_attributes.marker_name
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and marker == (
            _anatomy.PATCH_MARKER
        ):
            positions.append(scheduled)
        elif (
            event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            or local_activity_name(event) is not None
        ):
            scheduled += 1
    return positions


def describe(shape: Shape) -> str:
    """One line for the report."""
    steps = ", ".join(shape.activities)
    where = (
        f"; {shape.signals} signal(s) after {shape.activities[shape.trigger]}, "
        f"awaited before {shape.activities[shape.wait_before]}"
        if shape.trigger >= 0 and shape.wait_before >= 0
        else ""
    )
    queues = len(set(shape.task_queues))
    upserts = f"; {len(shape.upsert_after)} search attribute upserts" if shape.upsert_after else ""
    if shape.local:
        upserts += "; local: " + ", ".join(f"{shape.activities[i]} (#{i})" for i in shape.local)
    if shape.patch_before:
        upserts += f"; {len(shape.patch_before)} patch calls (before #{shape.patch_before})"
    return f"{len(shape.activities)} activities ({steps}){where}; {queues} task queue(s){upserts}"


# --- the systems ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """A bare system: the baseline, or the baseline plus one thing the platform does."""

    name: str
    split_queues: bool = False
    search_attributes: bool = False
    codec: bool = False
    local_as_payment: bool = False
    patches: bool = False
    help: str = ""


BASELINE = Variant("bare", help="do-nothing activities, one task queue, SDK defaults")
# `--variants` adds these, to measure what each thing costs (or would save) side by side
VARIANTS = {
    v.name: v
    for v in (
        Variant(
            "bare+queues",
            split_queues=True,
            help="activities on one task queue per role, as the payment's",
        ),
        Variant(
            "bare+attrs",
            search_attributes=True,
            help="the payment's six search attributes at start, an upsert per status record",
        ),
        Variant("bare+codec", codec=True, help="the platform's payload encryption"),
        Variant(
            "bare+local",
            local_as_payment=True,
            help="local activities where the payment runs them locally",
        ),
        Variant(
            "bare+patches",
            local_as_payment=True,
            patches=True,
            help="bare+local, plus a workflow.patched call where the payment asks each patch "
            "(a marker and a TemporalChangeVersion upsert each)",
        ),
        Variant(
            "bare+temporal",
            search_attributes=True,
            codec=True,
            local_as_payment=True,
            patches=True,
            help="everything the payment asks of Temporal: bare+local with its search "
            "attributes, encryption and patch calls (only the payload sizes differ)",
        ),
    )
}


@dataclass
class BareSystem:
    """A bare variant ready to run: its queue, shape, client and worker process."""

    variant: Variant
    client: Client
    queue: str
    shape: Shape
    run_id: str
    worker_pid: int = 0

    async def one(self, index: int) -> Sample:
        """Start one bare workflow and wait for its result."""
        workflow_id = f"bench-{self.variant.name}-{self.run_id}-{index}-{uuid.uuid4().hex[:6]}"
        started = time.perf_counter()
        handle: WorkflowHandle[Any, Any] = await self.client.start_workflow(
            BARE_WORKFLOW,
            self.shape,
            id=workflow_id,
            task_queue=self.queue,
            search_attributes=(BARE_START_ATTRIBUTES if self.variant.search_attributes else None),
        )
        accepted = time.perf_counter()
        signals = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT)
        done = time.perf_counter()
        return Sample(
            workflow_id, (accepted - started) * 1e3, (done - started) * 1e3, f"{signals} signals"
        )


@dataclass
class Payments:
    """The real thing: payments through the API."""

    partner: httpx.AsyncClient
    temporal: Client  # the platform's client (payload codec): results and histories
    accounts: list[str]
    run_id: str

    async def one(self, index: int) -> Sample:
        """POST one SEPA payment and wait for its workflow's result."""
        body = {
            "account_id": self.accounts[index % len(self.accounts)],
            "amount": AMOUNT,
            "currency": "EUR",
            "rail": "sepa",
            "creditor": CREDITOR,
            "remittance_info": f"bench {self.run_id} {index}",
        }
        started = time.perf_counter()
        response = await _stack.post_idempotent(
            self.partner, "/v1/payments", body, uuid.uuid4().hex
        )
        accepted = time.perf_counter()
        if response.status_code != 202:
            raise RuntimeError(
                f"POST /v1/payments answered {response.status_code}: {response.text}"
            )
        payment_id: str = response.json()["id"]
        result = await asyncio.wait_for(
            self.temporal.get_workflow_handle(payment_id).result(), RESULT_TIMEOUT
        )
        done = time.perf_counter()
        status = result.get("status", "?") if isinstance(result, dict) else "?"
        if status != "settled" and isinstance(result, dict):
            # say why: a broken bench setup shows up here first
            status = f"{status} {result.get('failure')}"
        return Sample(payment_id, (accepted - started) * 1e3, (done - started) * 1e3, status)


def shape_for(variant: Variant, history: Any, queue: str) -> Shape:
    """The variant's shape of the calibration payment's history."""
    return shape_of(
        history,
        queue,
        variant.split_queues,
        variant.search_attributes,
        variant.local_as_payment,
        variant.patches,
    )


@contextmanager
def bare_worker(
    settings: Settings, queues: Sequence[str], log_path: Path, codec: bool
) -> Iterator[subprocess.Popen[bytes]]:
    """A bare worker as a process of its own, like the payments worker."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, str(BENCH_DIR / "bare_worker.py")]
    for queue in dict.fromkeys(queues):
        argv += ["--task-queue", queue]
    if codec:
        argv.append("--codec")
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv, env=settings_env(settings), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while READY not in log_path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bare worker did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


# --- report ------------------------------------------------------------------------------


def pooled(rounds: Sequence[Round], system: str) -> list[Sample]:
    """Every sample of one system."""
    return [s for r in rounds if r.system == system for s in r.samples]


def median_rate(rounds: Sequence[Round], system: str) -> float:
    """The median round's throughput."""
    return _profile.median(r.per_second for r in rounds if r.system == system)


def pct(values: Sequence[float]) -> str:
    """p50 / p95 / p99, in milliseconds."""
    return " / ".join(f"{_stack.percentile(values, q):7.1f}" for q in (0.5, 0.95, 0.99))


def report(rounds: Sequence[Round], systems: Sequence[str], concurrency: int) -> str:
    """The results table: throughput and latency per system, the ratio, the start latency."""
    width = max(len(name) for name in systems)
    lines = [
        f"concurrency {concurrency}; rounds: "
        + ", ".join(f"{r.system} {r.per_second:.1f}/s" for r in rounds),
        "",
        f"{'system':<{width}} | {'workflows':>9} | {'per s (median round)':>20} | "
        f"{'end to end p50 / p95 / p99 ms':>29} | {'start p50 / p95 / p99 ms':>25}",
    ]
    for system in systems:
        samples = pooled(rounds, system)
        lines.append(
            f"{system:<{width}} | {len(samples):>9} | {median_rate(rounds, system):>20.1f} | "
            f"{pct([s.end_to_end_ms for s in samples]):>29} | "
            f"{pct([s.start_ms for s in samples]):>25}"
        )
    ratio = median_rate(rounds, PAYMENT) / median_rate(rounds, BASELINE.name)
    posts = [s.start_ms for s in pooled(rounds, PAYMENT)]
    starts = [s.start_ms for s in pooled(rounds, BASELINE.name)]
    lines += [
        "",
        f"ratio payment/bare (throughput): {ratio:.2f}   (ordinary activities throughout)",
    ]
    for system in systems:
        if system not in (PAYMENT, BASELINE.name):
            goal = "   (goal >= 0.8)" if system == "bare+local" else ""
            lines.append(
                f"ratio payment/{system} (throughput): "
                f"{median_rate(rounds, PAYMENT) / median_rate(rounds, system):.2f}{goal}"
            )
    lines += [
        f"POST /v1/payments     p50 / p95 / p99 ms: {pct(posts)}",
        f"client.start_workflow p50 / p95 / p99 ms: {pct(starts)}",
        f"POST / start_workflow at p50: "
        f"{_stack.percentile(posts, 0.5) / _stack.percentile(starts, 0.5):.1f}x",
    ]
    outcomes: dict[str, int] = {}
    for sample in pooled(rounds, PAYMENT):
        outcomes[sample.outcome] = outcomes.get(sample.outcome, 0) + 1
    lines.append(f"payment outcomes: {outcomes}")
    return "\n".join(lines)


def cpu_report(
    cpu: dict[str, dict[str, float]], counts: dict[str, int], systems: Sequence[str]
) -> str:
    """CPU milliseconds per workflow, per process, for each system."""
    # every bare variant's worker is "the bare worker" of its column
    merged = {
        system: {
            ("bare worker" if name.startswith("bare worker") else name): 0.0
            for name in cpu.get(system, {})
        }
        for system in systems
    }
    for system in systems:
        for name, seconds in cpu.get(system, {}).items():
            key = "bare worker" if name.startswith("bare worker") else name
            merged[system][key] += seconds
    names = sorted({name for used in merged.values() for name in used} - {CLIENT})
    width = max(len(s) for s in systems) + 1
    lines = [f"{'CPU ms per workflow':<20} | " + " | ".join(f"{s:>{width}}" for s in systems)]
    totals = dict.fromkeys(systems, 0.0)
    for name in [*names, "servers total", CLIENT]:
        cells = []
        for system in systems:
            used = merged.get(system, {})
            seconds = totals[system] if name == "servers total" else used.get(name, 0.0)
            if name in names:
                totals[system] += seconds
            cells.append(f"{seconds * 1e3 / max(1, counts.get(system, 0)):>{width}.1f}")
        lines.append(f"{name:<20} | " + " | ".join(cells))
    per = {system: totals[system] / max(1, counts.get(system, 0)) for system in systems}
    lines.append(
        "CPU ratio (servers) bare/payment: "
        + ", ".join(
            f"{system} {per[system] / per[PAYMENT]:.2f}" for system in systems if system != PAYMENT
        )
    )
    return "\n".join(lines)


def pg_report(delta: dict[str, float], payments: int) -> str:
    """PostgreSQL's work per payment."""
    per = {key: value / max(1, payments) for key, value in delta.items()}
    return (
        f"PostgreSQL per payment: {per['active_time']:.1f} ms executing statements, "
        f"{per['idle_in_transaction_time']:.1f} ms idle inside a transaction, "
        f"{per['xact_commit']:.1f} commits, {per['xact_rollback']:.2f} rollbacks, "
        f"{per['rows_written']:.1f} rows written"
    )


# --- the run -------------------------------------------------------------------------------


async def calibrate(payments: Payments) -> Any:
    """Make one real payment; its history is the shape every bare system copies."""
    sample = await payments.one(0)
    if sample.outcome != "settled":
        raise RuntimeError(f"calibration payment ended {sample.outcome}")
    return await payments.temporal.get_workflow_handle(sample.workflow_id).fetch_history()


async def profile_histories(
    clients: dict[str, Client], rounds: Sequence[Round], sample_size: int
) -> tuple[dict[str, list[_profile.Timeline]], dict[str, list[_anatomy.Anatomy]]]:
    """Timelines and anatomies of up to `sample_size` workflows per system, from the last
    rounds."""
    timelines: dict[str, list[_profile.Timeline]] = {}
    anatomies: dict[str, list[_anatomy.Anatomy]] = {}
    for system, client in clients.items():
        ids = [s.workflow_id for s in pooled(rounds, system)][-sample_size:]
        for workflow_id in ids:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
            events = list(history.events)
            timelines.setdefault(system, []).append(_profile.timeline(events))
            anatomies.setdefault(system, []).append(_anatomy.anatomy(events))
    return timelines, anatomies


async def run(args: argparse.Namespace, platform: _stack.Platform) -> None:
    """Calibrate, warm up, run the alternating rounds, profile, verify, report."""
    settings = platform.settings
    variants = [BASELINE, *(VARIANTS[name] for name in args.variants)]
    systems = [v.name for v in variants] + [PAYMENT]
    per_round = max(1, args.payments // args.rounds)
    run_id = uuid.uuid4().hex[:6]
    tenant = await _stack.new_tenant(settings, "bench")
    temporal = await connect(settings)
    total = per_round * args.rounds + args.concurrency + 1
    async with _stack.api_clients(platform.api_url, tenant, args.concurrency + 4) as (
        partner,
        ops,
    ):
        count = _stack.accounts_needed(total, args.concurrency * 2)
        accounts = await _stack.open_accounts(partner, ops, count, "EUR", FUNDING)
        payments = Payments(partner, temporal, accounts, run_id)
        history = await calibrate(payments)
        bare: list[BareSystem] = []
        for variant in variants:
            queue = f"bench-{variant.name.replace('+', '-')}-{run_id}"
            system = BareSystem(
                variant,
                await bare_client(settings, variant.codec),
                queue,
                shape_for(variant, history, queue),
                run_id,
            )
            print(f"{variant.name}: {describe(system.shape)}", file=sys.stderr, flush=True)
            bare.append(system)
        with contextlib.ExitStack() as workers:
            for system in bare:
                # the workflow's own queue first: the bare worker runs the workflow there
                process = workers.enter_context(
                    bare_worker(
                        settings,
                        [system.queue, *system.shape.task_queues],
                        settings.data_dir / "logs" / f"bench-{system.queue}.log",
                        system.variant.codec,
                    )
                )
                system.worker_pid = process.pid
            runners: dict[str, Runner] = {s.variant.name: s.one for s in bare}
            runners[PAYMENT] = payments.one
            for system_name in systems:  # warm-up: connections, caches, first imports
                await closed_loop(
                    system_name, args.concurrency, args.concurrency, runners[system_name]
                )
            meter = _cpu_meter(platform, {f"bare worker {s.queue}": s.worker_pid for s in bare})
            engine = get_engine(settings)
            # the servers' own background work (pollers, timers, the maintenance schedule)
            # while nothing runs: taken off each round, so a slow round is not charged more
            idle_before = meter.read() if meter else {}
            await asyncio.sleep(PG_STATS_SETTLE_SECONDS)
            idle = {
                name: seconds / PG_STATS_SETTLE_SECONDS
                for name, seconds in _profile.cpu_delta(
                    idle_before, meter.read() if meter else {}
                ).items()
            }
            pg_before = await _profile.pg_counters(engine)
            rounds: list[Round] = []
            cpu: dict[str, dict[str, float]] = {}
            sessions = _profile.SessionSampler(engine)
            for index in range(args.rounds):
                # rotate and reverse the order each round, so that no system always follows
                # the same one (a-b, b-a, … for two)
                order = systems[index % len(systems) :] + systems[: index % len(systems)]
                if index % 2:
                    order.reverse()
                for system_name in order:
                    before = meter.read() if meter else {}
                    if system_name == PAYMENT:
                        sessions.start()
                    done = await closed_loop(
                        system_name, per_round, args.concurrency, runners[system_name]
                    )
                    await sessions.stop()
                    if meter:
                        totals = cpu.setdefault(system_name, {})
                        for name, seconds in _profile.cpu_delta(before, meter.read()).items():
                            busy = seconds - idle.get(name, 0.0) * done.seconds
                            totals[name] = totals.get(name, 0.0) + busy
                    rounds.append(done)
                    print(
                        f"round {index + 1}/{args.rounds} {system_name:<12} "
                        f"{done.per_second:6.1f}/s",
                        file=sys.stderr,
                        flush=True,
                    )
            await asyncio.sleep(PG_STATS_SETTLE_SECONDS)
            pg_delta = _profile.cpu_delta(pg_before, await _profile.pg_counters(engine))
            clients = {s.variant.name: s.client for s in bare}
            clients[PAYMENT] = temporal
            timelines, anatomies = await profile_histories(clients, rounds, args.profile_sample)
        verified = await verify_ledger(engine)
        await dispose_engines()
    counts = {system: len(pooled(rounds, system)) for system in systems}
    print()
    print(f"shape (from a real payment): {describe(bare[0].shape)}")
    print(report(rounds, systems, args.concurrency))
    print()
    print(f"where the time goes ({args.profile_sample} workflows per system, from their histories)")
    print(_profile.breakdown_table(timelines))
    print()
    print(_profile.steps_table({name: timelines[name] for name in (BASELINE.name, PAYMENT)}))
    print()
    print(f"what Temporal stores per workflow ({args.profile_sample} per system, their histories)")
    print(_anatomy.anatomy_table(anatomies))
    if cpu:
        print()
        print("CPU per workflow above each process's idle rate (from /proc)")
        print(cpu_report(cpu, counts, systems))
    print()
    print(pg_report(pg_delta, counts[PAYMENT]))
    print()
    print("PostgreSQL sessions during the payment rounds (sampled every 100 ms)")
    print(sessions.table(counts[PAYMENT]))
    print(
        f"ledger verify after the run: {'OK' if verified.ok else verified.problems[0]} "
        f"({verified.transfers:,} transfers, {verified.entries:,} entries)"
    )


def _cpu_meter(platform: _stack.Platform, bare_workers: dict[str, int]) -> _profile.CpuMeter | None:
    """CPU per process of a private stack (a stack of others' is not ours to inspect)."""
    stack = platform.stack
    if stack is None:
        return None
    pids = {name: process.pid for name, process in stack.processes.items()}
    postmaster = _profile.postmaster_pid(stack.postgres.pgdata)
    if postmaster is not None:
        pids["postgres"] = postmaster
    pids.update(bare_workers)
    return _profile.CpuMeter(pids)


def main() -> None:
    """Parse the arguments, start or connect to the platform, run, report."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="variants: " + "; ".join(f"{v.name}: {v.help}" for v in VARIANTS.values()),
    )
    parser.add_argument("--payments", type=int, default=120, help="workflows per system")
    parser.add_argument("--concurrency", type=int, default=8, help="workflows in flight")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    parser.add_argument(
        "--variants",
        type=lambda text: [name.strip() for name in text.split(",") if name.strip()],
        # bare+local by default: the bare workflow equally tuned (the payment runs three
        # steps as local activities); the plain bare still runs, for history (issue #20)
        default=["bare+local"],
        help="comma list of bare variants to run alongside (see below; default bare+local,"
        " 'none' for the plain bare alone)",
    )
    parser.add_argument(
        "--profile-sample", type=int, default=40, help="histories per system to profile"
    )
    _stack.add_stack_arguments(parser)
    args = parser.parse_args()
    if args.variants == ["none"]:
        args.variants = []
    unknown = set(args.variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; known: {sorted(VARIANTS)}")
    with _stack.platform(args) as platform:
        asyncio.run(run(args, platform))
    exit_without_finalizing(0)


if __name__ == "__main__":
    main()
