"""Orchestration cost: full payments through the API against bare Temporal, side by side.

    make bench      (or: .venv/bin/python bench/workflow_bench.py --payments 200 --concurrency 16)

One run, one set of servers (a private stack on free ports, or `--connect` to running ones):

- (a) bare:    `BenchBare` (bench/bare_workflow.py) started with `client.start_workflow`:
               the same activities as a settled SEPA payment, in the same order, each a
               do-nothing; the same number of signals at the same place. Its shape is read
               off the history of a real payment made first (calibration).
- (b) payment: `POST /v1/payments` (SEPA, to a creditor the bank accepts) and the payment
               workflow to `settled`, with every guarantee on: idempotency, ledger hold and
               post, screening, limits, status records, audit, encryption.

Both are closed loops at the same concurrency. Rounds alternate a-b, b-a, a-b … so noise on
the shared 2-core machine hits both alike; throughput is the median of the rounds, latency
percentiles pool every round. The bank settles at once (`banksim_settle_delay_seconds=0` on
the private stack), so the payment's time is the platform's own. End-to-end latency is from
the start request to the workflow's result, for both. Afterwards the run profiles where the
time goes (histories, CPU per process, PostgreSQL) and checks the books (`ledger verify`).
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _profile
import _stack
import httpx
from bare_worker import READY
from bare_workflow import BARE_WORKFLOW, Shape
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.converter import DataConverter

from ledger import verify_ledger
from payments.codec import data_converter
from payments.db import dispose_engines, get_engine
from payments.settings import Settings
from payments.temporal_client import connect, exit_without_finalizing
from workflows import search_attributes as sa
from workflows.queues import ACTIVITY_ROLE, queue_for

BENCH_DIR = Path(__file__).resolve().parent
AMOUNT = 100  # 1.00 EUR
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
SYSTEMS = ("bare", "payment")
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
    local: Sequence[str] = (),
) -> Shape:
    """The bare shape of a settled payment's history (see `Shape`)."""
    names: list[str] = []
    signals = 0
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            names.append(event.activity_task_scheduled_event_attributes.activity_type.name)
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signals += 1
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
        local=[i for i, name in enumerate(names) if name in local],
    )


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
    return f"{len(shape.activities)} activities ({steps}){where}; {queues} task queue(s){upserts}"


# --- the two systems ---------------------------------------------------------------------


@dataclass
class Bench:
    """Everything both systems need during a run."""

    settings: Settings
    partner: httpx.AsyncClient
    temporal: Client  # the platform's client (payload codec): payment results and histories
    bare_client: Client  # the SDK's defaults: the bare workflow
    accounts: list[str]
    bare_queue: str
    shape: Shape | None = None
    start_attributes: TypedSearchAttributes | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    async def payment(self, index: int) -> Sample:
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
        response = await self.partner.post(
            "/v1/payments", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
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
        return Sample(payment_id, (accepted - started) * 1e3, (done - started) * 1e3, status)

    async def bare(self, index: int) -> Sample:
        """Start one bare workflow and wait for its result."""
        assert self.shape is not None
        workflow_id = f"bench-bare-{self.run_id}-{index}-{uuid.uuid4().hex[:6]}"
        started = time.perf_counter()
        handle: WorkflowHandle[Any, Any] = await self.bare_client.start_workflow(
            BARE_WORKFLOW,
            self.shape,
            id=workflow_id,
            task_queue=self.bare_queue,
            search_attributes=self.start_attributes,
        )
        accepted = time.perf_counter()
        signals = await asyncio.wait_for(handle.result(), RESULT_TIMEOUT)
        done = time.perf_counter()
        return Sample(
            workflow_id, (accepted - started) * 1e3, (done - started) * 1e3, f"{signals} signals"
        )


@contextmanager
def bare_worker(
    settings: Settings, queues: Sequence[str], log_dir: Path, codec: bool
) -> Iterator[subprocess.Popen[bytes]]:
    """The bare worker as a process of its own, like the payments worker."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "bare-worker.log"
    argv = [sys.executable, str(BENCH_DIR / "bare_worker.py")]
    for queue in dict.fromkeys(queues):
        argv += ["--task-queue", queue]
    if codec:
        argv.append("--codec")
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv, env=_stack.child_env(settings), stdout=log, stderr=subprocess.STDOUT
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


def report(rounds: Sequence[Round], concurrency: int, shape: Shape) -> str:
    """The results table."""
    lines = [
        f"shape: {describe(shape)}",
        f"concurrency {concurrency}; rounds "
        + ", ".join(f"{r.system}:{r.per_second:.1f}/s" for r in rounds),
        "",
        f"{'system':<8} | {'workflows':>9} | {'per s (median round)':>20} | "
        f"{'end to end p50 / p95 / p99 ms':>29} | {'start p50 / p95 / p99 ms':>25}",
    ]
    for system in SYSTEMS:
        samples = pooled(rounds, system)
        lines.append(
            f"{system:<8} | {len(samples):>9} | {median_rate(rounds, system):>20.1f} | "
            f"{pct([s.end_to_end_ms for s in samples]):>29} | "
            f"{pct([s.start_ms for s in samples]):>25}"
        )
    ratio = median_rate(rounds, "payment") / median_rate(rounds, "bare")
    posts = [s.start_ms for s in pooled(rounds, "payment")]
    starts = [s.start_ms for s in pooled(rounds, "bare")]
    lines += [
        "",
        f"ratio payment/bare (throughput): {ratio:.2f}   (goal >= 0.8)",
        f"POST /v1/payments     p50 / p95 / p99 ms: {pct(posts)}",
        f"client.start_workflow p50 / p95 / p99 ms: {pct(starts)}",
        f"POST / start_workflow at p50: "
        f"{_stack.percentile(posts, 0.5) / _stack.percentile(starts, 0.5):.1f}x",
    ]
    outcomes: dict[str, int] = {}
    for sample in pooled(rounds, "payment"):
        outcomes[sample.outcome] = outcomes.get(sample.outcome, 0) + 1
    lines.append(f"payment outcomes: {outcomes}")
    return "\n".join(lines)


def cpu_report(cpu: dict[str, dict[str, float]], counts: dict[str, int]) -> str:
    """CPU milliseconds per workflow, per process, for each system."""
    names = sorted({name for used in cpu.values() for name in used} - {CLIENT})
    lines = [f"{'CPU ms per workflow':<26} | " + " | ".join(f"{s:>9}" for s in SYSTEMS)]
    totals = {system: 0.0 for system in SYSTEMS}
    for name in [*names, "servers total", CLIENT]:
        cells = []
        for system in SYSTEMS:
            used = cpu.get(system, {})
            seconds = totals[system] if name == "servers total" else used.get(name, 0.0)
            if name in names:
                totals[system] += seconds
            cells.append(f"{seconds * 1e3 / max(1, counts.get(system, 0)):>9.1f}")
        lines.append(f"{name:<26} | " + " | ".join(cells))
    ratio = totals["bare"] / counts.get("bare", 1) / (totals["payment"] / counts.get("payment", 1))
    lines.append(f"CPU ratio bare/payment (servers): {ratio:.2f}")
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


async def calibrate(bench: Bench, args: argparse.Namespace) -> Shape:
    """Make one real payment and read the bare shape off its history."""
    sample = await bench.payment(0)
    if sample.outcome != "settled":
        raise RuntimeError(f"calibration payment ended {sample.outcome}")
    history = await bench.temporal.get_workflow_handle(sample.workflow_id).fetch_history()
    return shape_of(
        history,
        bench.bare_queue,
        args.bare_split_queues,
        args.bare_search_attributes,
        args.bare_local,
    )


async def profile_histories(
    bench: Bench, rounds: Sequence[Round], sample_size: int
) -> dict[str, list[_profile.Timeline]]:
    """Timelines of up to `sample_size` workflows per system, from the last rounds."""
    timelines: dict[str, list[_profile.Timeline]] = {}
    for system in SYSTEMS:
        ids = [s.workflow_id for s in pooled(rounds, system)][-sample_size:]
        client = bench.temporal if system == "payment" else bench.bare_client
        found = []
        for workflow_id in ids:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
            found.append(_profile.timeline(list(history.events)))
        timelines[system] = found
    return timelines


async def run(args: argparse.Namespace, platform: _stack.Platform) -> None:
    """Calibrate, warm up, run the alternating rounds, profile, verify, report."""
    settings = platform.settings
    per_round = max(1, args.payments // args.rounds)
    tenant = await _stack.new_tenant(settings, "bench")
    temporal = await connect(settings)
    bare_client = await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings) if args.bare_codec else DataConverter.default,
    )
    total = per_round * args.rounds + args.concurrency + 1
    async with _stack.api_clients(platform.api_url, tenant, args.concurrency + 4) as (
        partner,
        ops,
    ):
        count = _stack.accounts_needed(total, args.concurrency * 2)
        accounts = await _stack.open_accounts(partner, ops, count, "EUR", 100_000_000)
        bench = Bench(
            settings, partner, temporal, bare_client, accounts, f"bench-bare-{uuid.uuid4().hex[:6]}"
        )
        shape = await calibrate(bench, args)
        if args.bare_search_attributes:
            bench.start_attributes = BARE_START_ATTRIBUTES
        bench.shape = shape
        print(f"calibrated on a real payment: {describe(shape)}", file=sys.stderr, flush=True)
        log_dir = settings.data_dir / "logs"
        # the workflow's own queue first: the bare worker runs the workflow on its first queue
        queues = [bench.bare_queue, *shape.task_queues]
        with bare_worker(settings, queues, log_dir, args.bare_codec) as worker_process:
            runners: dict[str, Runner] = {"bare": bench.bare, "payment": bench.payment}
            for system in SYSTEMS:  # warm-up: connections, caches, JIT-free Python paths
                await closed_loop(system, args.concurrency, args.concurrency, runners[system])
            meter = _cpu_meter(platform, worker_process.pid)
            engine = get_engine(settings)
            await asyncio.sleep(PG_STATS_SETTLE_SECONDS)
            pg_before = await _profile.pg_counters(engine)
            rounds: list[Round] = []
            cpu: dict[str, dict[str, float]] = {}
            sessions = _profile.SessionSampler(engine)
            for index in range(args.rounds):
                order = SYSTEMS if index % 2 == 0 else tuple(reversed(SYSTEMS))
                for system in order:
                    before = meter.read() if meter else {}
                    if system == "payment":
                        sessions.start()
                    done = await closed_loop(system, per_round, args.concurrency, runners[system])
                    await sessions.stop()
                    if meter:
                        used = _profile.cpu_delta(before, meter.read())
                        totals = cpu.setdefault(system, {})
                        for name, seconds in used.items():
                            totals[name] = totals.get(name, 0.0) + seconds
                    rounds.append(done)
                    print(
                        f"round {index + 1}/{args.rounds} {system:<7} {done.per_second:6.1f}/s",
                        file=sys.stderr,
                        flush=True,
                    )
            await asyncio.sleep(PG_STATS_SETTLE_SECONDS)
            pg_delta = _profile.cpu_delta(pg_before, await _profile.pg_counters(engine))
            timelines = await profile_histories(bench, rounds, args.profile_sample)
        verified = await verify_ledger(engine)
        await dispose_engines()
    counts = {system: len(pooled(rounds, system)) for system in SYSTEMS}
    print()
    print(report(rounds, args.concurrency, shape))
    print()
    print(f"where the time goes ({args.profile_sample} workflows per system, from their histories)")
    print(_profile.breakdown_table(timelines))
    print()
    print(_profile.steps_table(timelines))
    if cpu:
        print()
        print(cpu_report(cpu, counts))
    print()
    print(pg_report(pg_delta, counts["payment"]))
    print()
    print("PostgreSQL sessions during the payment rounds (sampled every 100 ms)")
    print(sessions.table(counts["payment"]))
    print(
        f"ledger verify after the run: {'OK' if verified.ok else verified.problems[0]} "
        f"({verified.transfers:,} transfers, {verified.entries:,} entries)"
    )


def _cpu_meter(platform: _stack.Platform, bare_worker_pid: int) -> _profile.CpuMeter | None:
    """CPU per process of a private stack (a stack of others' is not ours to inspect)."""
    stack = platform.stack
    if stack is None:
        return None
    pids = {name: process.pid for name, process in stack.processes.items()}
    postmaster = _profile.postmaster_pid(stack.postgres.pgdata)
    if postmaster is not None:
        pids["postgres"] = postmaster
    pids["bare worker"] = bare_worker_pid
    return _profile.CpuMeter(pids)


def main() -> None:
    """Parse the arguments, start or connect to the platform, run, report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--payments", type=int, default=200, help="workflows per system")
    parser.add_argument("--concurrency", type=int, default=16, help="workflows in flight")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds")
    variants = parser.add_argument_group(
        "bare variants", "add back one thing the platform does, to measure what it costs"
    )
    variants.add_argument(
        "--bare-split-queues",
        action="store_true",
        help="activities on one task queue per role, as the payment's (default: one queue)",
    )
    variants.add_argument(
        "--bare-search-attributes",
        action="store_true",
        help="the payment's six search attributes at start, a status upsert per status record",
    )
    variants.add_argument(
        "--bare-codec", action="store_true", help="the platform's payload encryption"
    )
    variants.add_argument(
        "--bare-local",
        action="append",
        default=[],
        metavar="ACTIVITY",
        help="run this activity as a local activity (repeatable), to see what it would save",
    )
    parser.add_argument(
        "--profile-sample", type=int, default=40, help="histories per system to profile"
    )
    _stack.add_stack_arguments(parser)
    args = parser.parse_args()
    with _stack.platform(args) as platform:
        asyncio.run(run(args, platform))
    exit_without_finalizing(0)


if __name__ == "__main__":
    main()
