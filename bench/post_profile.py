"""Where one `POST /v1/payments` spends its time: round trips, statements, Temporal calls, CPU.

    .venv/bin/python bench/post_profile.py --payments 30

Starts a private stack (or `--connect`s to running servers) for the worker, PostgreSQL,
Temporal and the bank, and serves the API *in this process* (the app `python -m api`
serves, through httpx's ASGI transport) so that it can count and time what each request
does:

- every statement the request sends to PostgreSQL (SQLAlchemy's cursor events) and every
  pool checkout with its pre-ping, with wall time;
- every Temporal RPC (the SDK's service client), with wall time;
- the rest of the request's wall time: Python in this process (FastAPI, pydantic,
  SQLAlchemy compiling, the codec, our code);
- on request (`--log-statements`), PostgreSQL's own statement log for one request: every
  command the server received (psycopg's implicit BEGINs, pings and ROLLBACKs included),
  which is the round-trip count the client-side events cannot see;
- on request (`--cprofile N`), a cProfile of N more requests, top functions by own time;
- with a private stack, the CPU each process spent per payment over the measured requests
  (less its idle rate, as `make bench` counts it); with `--settle` every payment's whole
  workflow falls inside that window, so the worker's figure is its CPU per payment.

Requests run one at a time by default (the cost of one); `--concurrency N` runs N lanes,
each posting a payment and waiting for its workflow's end before the next, as `make bench`
does: where a request's time goes under that load. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import cProfile
import io
import pstats
import re
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _profile
import _stack
import httpx
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import service

from api.app import create_app
from kernel.db import get_engine

FUNDING = 5_000_000
CREDITOR = {"name": "Erika Mustermann", "country": "DE", "iban": "DE89370400440532013000"}
# PostgreSQL's log line of a statement: "<pid> LOG:  statement: <text>" (our log_line_prefix)
# seconds of idling measured before the requests, to take each process's background off
IDLE_SECONDS = 5.0
LOGGED = re.compile(r"^(\d+) .*?LOG:  (?:statement|execute [^:]*): (.*)$")


@dataclass
class Request:
    """What one request did."""

    wall_ms: float = 0.0
    statements: list[tuple[str, float]] = field(default_factory=list)
    checkouts: int = 0
    pings: int = 0
    ping_ms: float = 0.0
    rpcs: list[tuple[str, float]] = field(default_factory=list)

    @property
    def sql_ms(self) -> float:
        """Wall time inside statements (their round trips and the server's work)."""
        return sum(ms for _, ms in self.statements)

    @property
    def rpc_ms(self) -> float:
        """Wall time inside Temporal calls."""
        return sum(ms for _, ms in self.rpcs)


class Recorder:
    """Counts and times the statements, checkouts, pings and RPCs of the current request."""

    def __init__(self, engine: AsyncEngine) -> None:
        # per task: concurrent requests each record their own
        self._current: contextvars.ContextVar[Request | None] = contextvars.ContextVar(
            "request", default=None
        )
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._before)
        event.listen(sync, "after_cursor_execute", self._after)
        event.listen(sync.pool, "checkout", self._checkout)
        dialect = sync.dialect
        original_ping = dialect.do_ping

        def ping(dbapi_connection: Any) -> bool:
            began = time.perf_counter()
            try:
                return bool(original_ping(dbapi_connection))
            finally:
                if self.current is not None:
                    self.current.pings += 1
                    self.current.ping_ms += (time.perf_counter() - began) * 1e3

        dialect.do_ping = ping  # type: ignore[method-assign]
        self._patch_rpcs()

    def _before(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info["began"] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if self.current is not None:
            ms = (time.perf_counter() - conn.info.pop("began")) * 1e3
            self.current.statements.append((" ".join(statement.split())[:90], ms))

    def _checkout(self, *_: Any) -> None:
        if self.current is not None:
            self.current.checkouts += 1

    def _patch_rpcs(self) -> None:
        original = service._BridgeServiceClient._rpc_call
        recorder = self

        async def rpc_call(self: Any, rpc: str, *args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return await original(self, rpc, *args, **kwargs)
            finally:
                if recorder.current is not None:
                    recorder.current.rpcs.append((rpc, (time.perf_counter() - began) * 1e3))

        service._BridgeServiceClient._rpc_call = rpc_call  # type: ignore[method-assign]

    @property
    def current(self) -> Request | None:
        """The request the running task records, if any."""
        return self._current.get()

    @contextmanager
    def request(self) -> Iterator[Request]:
        """Record everything until the block ends as one request."""
        request = Request()
        token = self._current.set(request)
        began = time.perf_counter()
        try:
            yield request
        finally:
            request.wall_ms = (time.perf_counter() - began) * 1e3
            self._current.reset(token)


def body(account_id: str, index: int) -> dict[str, Any]:
    """A SEPA payment of 1.00 EUR to a creditor the bank accepts."""
    return {
        "account_id": account_id,
        "amount": 100,
        "currency": "EUR",
        "rail": "sepa",
        "creditor": CREDITOR,
        "remittance_info": f"profile {index}",
    }


async def post(client: httpx.AsyncClient, account_id: str, index: int) -> str:
    """One payment; refuses anything but 202; returns its id."""
    response = await client.post(
        "/v1/payments", json=body(account_id, index), headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    if response.status_code != 202:
        raise RuntimeError(f"POST answered {response.status_code}: {response.text[:300]}")
    payment_id: str = response.json()["id"]
    return payment_id


def median(values: Sequence[float]) -> float:
    """The median (upper for even counts)."""
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else float("nan")


def summary(requests: Sequence[Request]) -> str:
    """Per-request medians, and the statements and RPCs of a typical request."""
    lines = [
        f"{len(requests)} requests; medians per request:",
        f"  wall {median([r.wall_ms for r in requests]):.1f} ms = "
        f"SQL {median([r.sql_ms for r in requests]):.1f} ms "
        f"({median([len(r.statements) for r in requests]):.0f} statements) + "
        f"pings {median([r.ping_ms for r in requests]):.1f} ms "
        f"({median([r.pings for r in requests]):.0f} of "
        f"{median([r.checkouts for r in requests]):.0f} checkouts) + "
        f"Temporal {median([r.rpc_ms for r in requests]):.1f} ms "
        f"({median([len(r.rpcs) for r in requests]):.0f} RPCs) + "
        f"the rest (Python in the API) "
        f"{median([r.wall_ms - r.sql_ms - r.ping_ms - r.rpc_ms for r in requests]):.1f} ms",
        "",
        "statements (median ms over the requests, in the order of the last request):",
    ]
    times: dict[str, list[float]] = defaultdict(list)
    for request in requests:
        for statement, ms in request.statements:
            times[statement].append(ms)
    last = requests[-1]
    for statement, _ in last.statements:
        lines.append(f"  {median(times[statement]):6.2f}  {statement}")
    rpcs: dict[str, list[float]] = defaultdict(list)
    for request in requests:
        for rpc, ms in request.rpcs:
            rpcs[rpc].append(ms)
    lines.append("Temporal RPCs (count over all requests, median ms):")
    for rpc, values in rpcs.items():
        lines.append(f"  {len(values):4d} x {median(values):6.2f}  {rpc}")
    return "\n".join(lines)


async def set_statement_log(engine: AsyncEngine, on: bool) -> None:
    """Turn PostgreSQL's log of every statement on or off (needs a superuser)."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        if on:
            await conn.execute(text("ALTER SYSTEM SET log_statement = 'all'"))
            await conn.execute(text("ALTER SYSTEM SET log_line_prefix = '%p '"))
        else:
            await conn.execute(text("ALTER SYSTEM RESET log_statement"))
            await conn.execute(text("ALTER SYSTEM RESET log_line_prefix"))
        await conn.execute(text("SELECT pg_reload_conf()"))
    await asyncio.sleep(0.5)  # the reload reaches every backend at its next command


def cpu_meter(platform: _stack.Platform) -> _profile.CpuMeter | None:
    """CPU per process of a private stack, and of this process (the API in it)."""
    stack = platform.stack
    if stack is None:
        return None
    pids = {f"{name} process": process.pid for name, process in stack.processes.items()}
    postmaster = _profile.postmaster_pid(stack.postgres.pgdata)
    if postmaster is not None:
        pids["postgres"] = postmaster
    return _profile.CpuMeter(pids, self_name="this process (API + client)")


def server_commands(log: Path, start: int, marker: str) -> list[tuple[int, str]]:
    """The commands PostgreSQL logged after byte `start` up to the marker statement."""
    with log.open("rb") as handle:
        handle.seek(start)
        tail = handle.read().decode(errors="replace")
    found: list[tuple[int, str]] = []
    for line in tail.splitlines():
        match = LOGGED.match(line)
        if match is None:
            continue
        if marker in match.group(2):
            break
        found.append((int(match.group(1)), " ".join(match.group(2).split())[:90]))
    return found


async def run(args: argparse.Namespace, platform: _stack.Platform) -> None:
    """Accounts, warm-up, the measured requests, the statement log, the profile."""
    settings = platform.settings
    tenant = await _stack.new_tenant(settings, "profile")
    async with _stack.api_clients(platform.api_url, tenant, 4) as (partner, ops):
        accounts = await _stack.open_accounts(partner, ops, 2, "EUR", FUNDING)
    app = create_app(settings)
    engine = get_engine(settings)
    recorder = Recorder(engine)
    headers = {"Authorization": f"Bearer {tenant.partner_key}"}
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as client,
    ):
        temporal = app.state.temporal
        warming = [await post(client, accounts[index % 2], index) for index in range(args.warmup)]
        for payment_id in warming:  # ended before the idle rates are read
            await temporal.get_workflow_handle(payment_id).result()
        requests: list[Request] = []
        meter = cpu_meter(platform)
        idle: dict[str, float] = {}
        if meter is not None:
            before = meter.read()
            await asyncio.sleep(IDLE_SECONDS)
            idle = {
                name: seconds / IDLE_SECONDS
                for name, seconds in _profile.cpu_delta(before, meter.read()).items()
            }
            before, began = meter.read(), time.perf_counter()
        pending = iter(range(args.payments))

        async def lane() -> None:
            for index in pending:
                with recorder.request() as request:
                    payment_id = await post(client, accounts[index % 2], index)
                requests.append(request)
                if args.settle or args.concurrency > 1:
                    # one at a time: the server and the worker idle while the next request
                    # runs; in lanes: a closed loop, as `make bench`
                    await temporal.get_workflow_handle(payment_id).result()

        await asyncio.gather(*(lane() for _ in range(args.concurrency)))
        print(summary(requests))
        if meter is not None:
            elapsed = time.perf_counter() - began
            used = _profile.cpu_delta(before, meter.read())
            print("CPU ms per payment over the measured requests, less each process's idle rate:")
            for name, seconds in sorted(used.items()):
                busy = seconds - idle.get(name, 0.0) * elapsed
                print(f"  {name:<28} {busy * 1e3 / len(requests):7.1f}")
        if args.log_statements and platform.stack is not None:
            log = platform.stack.postgres.pgdata / "server.log"
            await set_statement_log(engine, True)
            start = log.stat().st_size
            await post(client, accounts[0], -1)
            marker = f"end-of-request-{uuid.uuid4().hex[:8]}"
            async with engine.connect() as conn:
                await conn.execute(text(f"SELECT '{marker}'"))
            await set_statement_log(engine, False)
            commands = server_commands(log, start, marker)
            sessions = Counter(pid for pid, _ in commands)
            print()
            print(
                f"PostgreSQL received {len(commands)} commands for one request, on "
                f"{len(sessions)} session(s):"
            )
            for pid, command in commands:
                print(f"  {pid:>7}  {command}")
        if args.cprofile:
            profiler = cProfile.Profile()
            profiler.enable()
            for index in range(args.cprofile):
                await post(client, accounts[index % 2], 10_000 + index)
            profiler.disable()
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)
            print()
            print(f"cProfile of {args.cprofile} requests (own time, then cumulative):")
            print(out.getvalue())


def main() -> None:
    """Parse the arguments, start or connect to the platform, run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--payments", type=int, default=30, help="requests measured")
    parser.add_argument("--warmup", type=int, default=5, help="requests before measuring")
    parser.add_argument(
        "--log-statements",
        action="store_true",
        help="print what PostgreSQL received for one request (private stack only)",
    )
    parser.add_argument(
        "--settle",
        action="store_true",
        help="wait for each payment's workflow to end before the next request",
    )
    parser.add_argument(
        "--concurrency", type=int, default=1, help="lanes of POST-and-wait (default 1)"
    )
    parser.add_argument("--cprofile", type=int, default=0, help="requests to profile")
    parser.add_argument("--top", type=int, default=40, help="functions shown per profile")
    _stack.add_stack_arguments(parser)
    args = parser.parse_args()
    with _stack.platform(args) as platform:
        asyncio.run(run(args, platform))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
