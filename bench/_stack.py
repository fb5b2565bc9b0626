"""What the API benchmarks share: a private platform (or a running one), keys, funded accounts.

`bench/workflow_bench.py` and `bench/load.py` either start the whole platform with
`ops.devstack.Stack` in a temporary directory on free ports, or drive servers that are
already running (`make dev`, say) when given `--connect`. Either way they create a fresh
tenant with its own keys, so the run sees only its own payments and events.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kernel.api_keys import create_key, ensure_tenant
from kernel.db import dispose_engines, get_engine
from kernel.settings import Settings, setting_paths
from ops.devstack import Stack, isolated_settings

# a key's default limit is 100 requests/s per API process; a benchmark must not meet it
BENCH_RATE_LIMIT = 100_000
# velocity limits count payments per customer per 24 h (100 for a low-risk customer): spread
# the payments so that none of them goes to review for it
PAYMENTS_PER_ACCOUNT = 80
KEEPALIVE_SECONDS = 2.0
# a request lost on the wire is sent again with the same Idempotency-Key: the API answers it
# once, so a retry never makes a second payment
SEND_ATTEMPTS = 3

CUSTOMER = {
    "type": "individual",
    "name": "Ada Lovelace",
    "country": "GB",
    "address": {
        "line1": "12 St James's Square",
        "city": "London",
        "postal_code": "SW1Y 4JH",
        "country": "GB",
    },
    "date_of_birth": "1990-12-10",
}


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every API benchmark takes: private stack or running servers, settings."""
    parser.add_argument(
        "--connect",
        action="store_true",
        help="drive servers already running (addresses from PAYMENTS_* settings / .env) "
        "instead of starting a private stack",
    )
    parser.add_argument("--api-url", help="with --connect: the API's base URL")
    parser.add_argument("--banksim-url", help="with --connect: the bank simulator's base URL")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a Settings field for the private stack's processes, e.g. "
        "--set worker.max_concurrent_activities=200 (repeatable)",
    )


def parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """`NAME=VALUE` strings as `{"section.field": value}`; NAME is a setting's environment
    variable (`PAYMENTS_WORKER_MAX_CONCURRENT_ACTIVITIES`) or its path
    (`worker.max_concurrent_activities`)."""
    paths = setting_paths()
    known = set(paths.values())
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        path = name if name in known else paths.get(name.upper())
        if not sep or path is None:
            raise SystemExit(f"--set {pair!r}: not NAME=VALUE with a setting's variable or path")
        overrides[path] = value
    return overrides


def bench_settings(data_dir: Path, overrides: dict[str, str]) -> Settings:
    """Settings of a private stack: temporary data, free ports, an instant bank.

    The bank settles at once (`banksim.settle_delay_seconds=0`) and ACH leaves in 2-second
    windows: the benchmarks measure the platform, not the bank's or the Fed's calendar.
    """
    defaults: dict[str, Any] = {
        "banksim.settle_delay_seconds": 0.0,
        # ACH goes out in windows of 2 s instead of FedACH's three cut-offs a day, and its
        # return window is a minute, as in the integration tests
        "ach.window_seconds": 2.0,
        "ach.return_window_seconds": 60.0,
        # a SEPA payment's workflow ends at settlement: `make bench` times it to its result,
        # and the return window is an idle timer of days (the load test reads statuses)
        "sepa.return_window_seconds": 0.0,
    }
    return isolated_settings(data_dir, {**defaults, **overrides})


@dataclass
class Platform:
    """The servers a benchmark drives, and the stack when it started them itself."""

    settings: Settings
    api_url: str
    banksim_url: str
    stack: Stack | None


@contextlib.contextmanager
def platform(args: argparse.Namespace) -> Iterator[Platform]:
    """Start a private stack (default) or describe the running one (`--connect`)."""
    overrides = parse_overrides(args.set)
    if args.connect:
        # the environment and .env as every process reads them, plus the overrides
        settings = Settings().updated(overrides)
        yield Platform(
            settings,
            args.api_url or settings.api.url,
            args.banksim_url or settings.rails.bank_url,
            None,
        )
        return
    data_dir = Path(tempfile.mkdtemp(prefix="payments-bench-"))
    settings = bench_settings(data_dir, overrides)
    stack = Stack(settings, web_ui=False)
    try:
        print(f"starting a private stack in {data_dir} …", file=sys.stderr, flush=True)
        stack.start_all()
        yield Platform(settings, settings.api.url, settings.rails.bank_url, stack)
    finally:
        stack.stop_all()
        shutil.rmtree(data_dir, ignore_errors=True)


@dataclass
class BenchTenant:
    """A fresh tenant with a partner and an ops key, both without a practical rate limit."""

    tenant_id: str
    partner_key: str
    ops_key: str


async def new_tenant(settings: Settings, label: str) -> BenchTenant:
    """Create a tenant and its keys directly in the database (as `payments keys create`)."""
    tenant_id = f"ten_{label}_{uuid.uuid4().hex[:8]}"
    engine = get_engine(settings)
    async with engine.begin() as conn:
        await ensure_tenant(conn, tenant_id, f"{label} run")
        partner = await create_key(
            conn,
            tenant_id=tenant_id,
            principal=f"{label}-client",
            scopes=["payments:write", "payments:read"],
            rate_limit_per_second=BENCH_RATE_LIMIT,
        )
        ops = await create_key(
            conn,
            tenant_id=tenant_id,
            principal=f"{label}-ops",
            # it funds the run's accounts: deposits are platform work
            scopes=["ops", "payments:read", "platform"],
            rate_limit_per_second=BENCH_RATE_LIMIT,
        )
    await dispose_engines()
    return BenchTenant(tenant_id, partner, ops)


@contextlib.asynccontextmanager
async def api_clients(
    api_url: str, tenant: BenchTenant, connections: int
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """A partner and an ops HTTP client with keep-alive pools sized for the benchmark."""
    # uvicorn closes a connection idle for 5 s, httpx's default expiry: drop ours earlier,
    # or a request can race the server's close and fail
    limits = httpx.Limits(
        max_connections=connections,
        max_keepalive_connections=connections,
        keepalive_expiry=KEEPALIVE_SECONDS,
    )
    timeout = httpx.Timeout(60.0)
    async with (
        httpx.AsyncClient(
            base_url=api_url,
            headers={"Authorization": f"Bearer {tenant.partner_key}"},
            limits=limits,
            timeout=timeout,
        ) as partner,
        httpx.AsyncClient(
            base_url=api_url,
            headers={"Authorization": f"Bearer {tenant.ops_key}"},
            limits=httpx.Limits(max_connections=4, keepalive_expiry=KEEPALIVE_SECONDS),
            timeout=timeout,
        ) as ops,
    ):
        yield partner, ops


async def post_idempotent(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], key: str
) -> httpx.Response:
    """POST with an Idempotency-Key, sent again (same key) if the connection fails."""
    for attempt in range(1, SEND_ATTEMPTS + 1):
        try:
            return await client.post(path, json=body, headers={"Idempotency-Key": key})
        except httpx.TransportError:
            if attempt == SEND_ATTEMPTS:
                raise
            await asyncio.sleep(0.1 * attempt)
    raise AssertionError("unreachable")


def _expect(response: httpx.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:500]}"
        )
    body: dict[str, Any] = response.json()
    return body


async def open_account(
    partner: httpx.AsyncClient, ops: httpx.AsyncClient, currency: str, deposit: int
) -> str:
    """A new customer with an account in `currency`, credited `deposit` (0: none)."""
    customer = _expect(await partner.post("/v1/customers", json=CUSTOMER), 201)
    account = _expect(
        await partner.post(
            "/v1/accounts", json={"customer_id": customer["id"], "currency": currency}
        ),
        201,
    )
    if deposit:
        credited = _expect(
            await ops.post(
                "/v1/deposits",
                json={"account_id": account["id"], "amount": deposit, "currency": currency},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            ),
            201,
        )
        # a deposit above PAYMENTS_DEPOSIT_REVIEW_THRESHOLD waits for a second principal:
        # a benchmark account must be funded at once, or every payment fails for funds
        if credited["status"] != "credited":
            raise RuntimeError(f"the funding deposit is {credited['status']}, not credited")
    account_id: str = account["id"]
    return account_id


async def open_accounts(
    partner: httpx.AsyncClient,
    ops: httpx.AsyncClient,
    count: int,
    currency: str,
    deposit: int,
    parallel: int = 4,
) -> list[str]:
    """`count` funded accounts, a few at a time."""
    gate = asyncio.Semaphore(parallel)

    async def one() -> str:
        async with gate:
            return await open_account(partner, ops, currency, deposit)

    return list(await asyncio.gather(*(one() for _ in range(count))))


def accounts_needed(payments: int, at_least: int) -> int:
    """How many debtor accounts keep every customer under the daily count limit."""
    return max(at_least, -(-payments // PAYMENTS_PER_ACCOUNT))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank) of `values`; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds used so far) of a live process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # after the command: state, ppid, ... utime (14th field of the line), stime (15th)
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by each process of a private stack; PostgreSQL's is its
    postmaster's plus every live backend's (a backend that exited meanwhile is not counted:
    benchmarks keep pooled connections open, so this undercounts only connection churn)."""
    used: dict[str, float] = {}
    for name, process in stack.processes.items():
        stat = _stat(process.pid)
        if stat is not None:
            used[name] = stat[1]
    postmaster_file = stack.postgres.pgdata / "postmaster.pid"
    if postmaster_file.exists():
        postmaster = int(postmaster_file.read_text().split()[0])
        total = 0.0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            stat = _stat(int(entry.name))
            if stat is not None and (int(entry.name) == postmaster or stat[0] == postmaster):
                total += stat[1]
        used["postgres"] = total
    return used
