"""`make bench-batch`: N payments as one batch against N individual POSTs, side by side.

One run on one platform (a private stack unless `--connect`): one
`POST /v1/payment-batches` of N items, followed until the batch is `completed`, and the same
N payments as individual `POST /v1/payments` (`--concurrency` in flight), followed until
every one has finished; the batch first unless `--individual-first` (run both orders: a
shared machine's load drifts within a run). Each side pays from its own funded accounts
(at most 80 payments a customer, under the daily count limit). Printed: the batch's POST
latency, payments/s of each side (first request sent → last payment finished), the outcome
counts, and the event count of the largest run of the batch's workflow (it continues as new
to stay bounded).

`--accept-only` measures the request alone (for 10,000 items, whose payments take long on a
small machine): one batch from one account, its POST latency, then a cancel, followed
until the batch is `canceled` (the items not started are canceled, the payments not yet
submitted too), and the event count of its largest run.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import _stack
from sqlalchemy import func, select

from kernel.db import dispose_engines, get_engine
from kernel.settings import Settings
from kernel.tables import payments
from kernel.temporal_client import connect, exit_without_finalizing
from workflows.models import TERMINAL_STATUSES

T = TypeVar("T")

FUNDING = 1_000_000
AMOUNT = 100
IBAN = "DE89370400440532013000"


def body_of(account_id: str, index: int) -> dict[str, Any]:
    """One payment (an item, or an individual POST's body)."""
    return {
        "account_id": account_id,
        "amount": AMOUNT,
        "currency": "EUR",
        "rail": "sepa",
        "creditor": {"name": "Erika Mustermann", "country": "DE", "iban": IBAN},
        "remittance_info": f"Bench {index}",
    }


async def finished(settings: Settings, account_ids: list[str]) -> dict[str, int]:
    """The payments of these accounts by status (finished or not)."""
    engine = get_engine(settings)
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(payments.c.status, func.count())
            .where(payments.c.account_id.in_(account_ids))
            .group_by(payments.c.status)
        )
        counts = {str(status): int(count) for status, count in rows.all()}
    return counts


def open_count(counts: dict[str, int]) -> int:
    """Payments not finished."""
    done = {str(status) for status in TERMINAL_STATUSES}
    return sum(count for status, count in counts.items() if status not in done)


async def largest_run_events(settings: Settings, batch_id: str) -> tuple[int, int]:
    """(runs of the batch's workflow, events of its largest run), from the histories
    themselves (visibility's history length can lag behind a run that just closed): the
    latest run, then each run it continued from."""
    client = await connect(settings)
    sizes: list[int] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(batch_id, run_id=run_id).fetch_history()
        sizes.append(len(history.events))
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
        if run_id is None:
            return len(sizes), max(sizes)


async def accept_only(args: argparse.Namespace, platform: _stack.Platform) -> None:
    """One batch of `--items` from one account: POST latency, then cancel it."""
    n = args.items
    settings = platform.settings
    tenant = await _stack.new_tenant(settings, "batchaccept")
    async with _stack.api_clients(platform.api_url, tenant, 4) as (partner, ops):
        [account] = await _stack.open_accounts(partner, ops, 1, "EUR", FUNDING)
        items = [{**body_of(account, i), "amount": 1, "reference": f"b{i}"} for i in range(n)]
        started = time.monotonic()
        response = await partner.post(
            "/v1/payment-batches",
            json={"reference": "bench", "items": items},
            headers={"Idempotency-Key": uuid.uuid4().hex},
            timeout=600,
        )
        post_latency = time.monotonic() - started
        batch = _stack._expect(response, 202)
        await asyncio.sleep(args.run_before_cancel)
        _stack._expect(
            await partner.post(f"/v1/payment-batches/{batch['id']}/cancel", json={}), 202
        )
        while batch["status"] not in ("completed", "canceled"):
            await asyncio.sleep(0.5)
            batch = _stack._expect(await partner.get(f"/v1/payment-batches/{batch['id']}"), 200)
        runs, largest = await largest_run_events(settings, batch["id"])
    print(f"\n{n} items in one request: POST {post_latency:.2f}s -> {batch['status']}")
    print(f"counts at the end: {batch['counts']}")
    print(f"batch workflow: {runs} run(s), largest run {largest} events")


async def run(args: argparse.Namespace, platform: _stack.Platform) -> None:
    """Both sides, then the report."""
    if args.accept_only:
        await accept_only(args, platform)
        return
    n = args.items
    settings = platform.settings
    tenant = await _stack.new_tenant(settings, "batchbench")
    async with _stack.api_clients(platform.api_url, tenant, args.concurrency + 4) as (
        partner,
        ops,
    ):
        per_side = _stack.accounts_needed(n, 1)
        print(f"opening {2 * per_side} funded accounts …", file=sys.stderr, flush=True)
        batch_accounts = await _stack.open_accounts(partner, ops, per_side, "EUR", FUNDING)
        single_accounts = (
            []
            if args.batch_only
            else await _stack.open_accounts(partner, ops, per_side, "EUR", FUNDING)
        )
        if args.warmup:
            # a fresh stack's first payments meet cold caches and plans made on empty tables:
            # whichever side went first paid for that (0.65-0.89x batch-first, 1.64x after)
            print(f"warming up with {args.warmup} payments …", file=sys.stderr, flush=True)
            warm = await _stack.open_accounts(
                partner, ops, _stack.accounts_needed(args.warmup, 1), "EUR", FUNDING
            )
            await asyncio.gather(
                *(
                    _stack.post_idempotent(
                        partner, "/v1/payments", body_of(warm[i % len(warm)], i), uuid.uuid4().hex
                    )
                    for i in range(args.warmup)
                )
            )
            while True:
                if open_count(await finished(settings, warm)) == 0:
                    break
                await asyncio.sleep(0.5)

        async def batch_side() -> tuple[float, float, dict[str, Any], int, int]:
            items = [
                {**body_of(batch_accounts[i % per_side], i), "reference": f"b{i}"} for i in range(n)
            ]
            started = time.monotonic()
            response = await partner.post(
                "/v1/payment-batches",
                json={"reference": "bench", "items": items},
                headers={"Idempotency-Key": uuid.uuid4().hex},
                timeout=600,
            )
            post_latency = time.monotonic() - started
            batch = _stack._expect(response, 202)
            while batch["status"] not in ("completed", "canceled"):
                await asyncio.sleep(0.5)
                batch = _stack._expect(await partner.get(f"/v1/payment-batches/{batch['id']}"), 200)
            batch_seconds = time.monotonic() - started
            runs, largest = await largest_run_events(settings, batch["id"])
            return post_latency, batch_seconds, batch, runs, largest

        async def individual_side() -> tuple[float, float, dict[str, int]]:
            gate = asyncio.Semaphore(args.concurrency)

            async def one(index: int) -> None:
                async with gate:
                    answer = await _stack.post_idempotent(
                        partner,
                        "/v1/payments",
                        body_of(single_accounts[index % per_side], index),
                        uuid.uuid4().hex,
                    )
                    _stack._expect(answer, 202)

            started = time.monotonic()
            await asyncio.gather(*(one(i) for i in range(n)))
            posts_seconds = time.monotonic() - started
            while True:
                counts = await finished(settings, single_accounts)
                if sum(counts.values()) >= n and open_count(counts) == 0:
                    break
                await asyncio.sleep(0.5)
            single_seconds = time.monotonic() - started
            return posts_seconds, single_seconds, counts

        cpu: dict[str, dict[str, float]] = {}

        def cpu_now() -> dict[str, float]:
            return _stack.process_cpu(platform.stack) if platform.stack else {}

        # what each process burns with no traffic (pollers, timers, the dev server's own
        # loops) grows with a side's wall time, not with its payments: measured, then taken out
        idle_seconds = 10.0
        before = cpu_now()
        await asyncio.sleep(idle_seconds)
        idle = {
            name: (used - before.get(name, 0.0)) / idle_seconds for name, used in cpu_now().items()
        }

        async def measured(side: str, run_side: Callable[[], Awaitable[T]]) -> T:
            before = cpu_now()
            started = time.monotonic()
            result = await run_side()
            wall = time.monotonic() - started
            after = cpu_now()
            cpu[side] = {
                name: after[name] - before.get(name, 0.0) - idle.get(name, 0.0) * wall
                for name in after
            }
            return result

        if args.batch_only:
            post_latency, batch_seconds, batch, runs, largest = await measured("batch", batch_side)
            await dispose_engines()
            print(f"\n{n} payments in one batch, SEPA: POST {post_latency:.2f}s, all finished")
            print(f"  {batch_seconds:.1f}s -> {n / batch_seconds:.1f} payments/s {batch['counts']}")
            print(f"batch workflow: {runs} run(s), largest run {largest} events")
            return
        if args.individual_first:
            posts_seconds, single_seconds, counts = await measured("individual", individual_side)
            post_latency, batch_seconds, batch, runs, largest = await measured("batch", batch_side)
        else:
            post_latency, batch_seconds, batch, runs, largest = await measured("batch", batch_side)
            posts_seconds, single_seconds, counts = await measured("individual", individual_side)
    await dispose_engines()
    print(f"\n{n} payments, SEPA, settle delay {settings.banksim.settle_delay_seconds}s")
    print(
        f"batch      : POST {post_latency:6.2f}s, all finished {batch_seconds:7.1f}s"
        f" -> {n / batch_seconds:6.1f} payments/s  {batch['counts']}"
    )
    print(
        f"individual : {n} POSTs {posts_seconds:6.2f}s, all finished {single_seconds:7.1f}s"
        f" -> {n / single_seconds:6.1f} payments/s  {counts}"
    )
    print(f"batch workflow: {runs} run(s), largest run {largest} events")
    if cpu:
        # where the work went: the worker process (one Python interpreter, one core at most)
        # is where a batch's payments are made, the API where individual POSTs make them
        names = sorted(set(cpu["batch"]) | set(cpu["individual"]))
        print("CPU ms per payment by process, net of idle: " + ", ".join(names))
        for side in ("batch", "individual"):
            row = ", ".join(f"{1000 * cpu[side].get(name, 0.0) / n:7.1f}" for name in names)
            total = 1000 * sum(cpu[side].values()) / n
            print(f"  {side:<10}: {row}  (total {total:.1f})")


def main() -> None:
    """Parse the arguments, start or connect to the platform, run, report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1000, help="payments per side")
    parser.add_argument("--concurrency", type=int, default=16, help="individual POSTs in flight")
    parser.add_argument(
        "--warmup", type=int, default=0, help="payments run and finished before measuring"
    )
    parser.add_argument(
        "--individual-first", action="store_true", help="run the individual POSTs first"
    )
    parser.add_argument(
        "--batch-only", action="store_true", help="the batch to its end, no individual side"
    )
    parser.add_argument(
        "--accept-only", action="store_true", help="the batch's POST, then cancel (see above)"
    )
    parser.add_argument(
        "--run-before-cancel", type=float, default=20.0, help="seconds (with --accept-only)"
    )
    _stack.add_stack_arguments(parser)
    args = parser.parse_args()
    with _stack.platform(args) as platform:
        asyncio.run(run(args, platform))
    exit_without_finalizing(0)


if __name__ == "__main__":
    main()
