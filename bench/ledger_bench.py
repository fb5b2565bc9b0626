"""Ledger benchmark: the real ledger against the bare minimum SQL, side by side, one run.

    make bench-ledger            (or: .venv/bin/python bench/ledger_bench.py --rounds 30)

Both systems run against the same PostgreSQL, through the same client stack (SQLAlchemy +
psycopg, the same pool, the same round trips), with the same workload: 8 concurrent clients
moving money between 1,000 accounts picked with a Zipf-skewed hot set, at batch sizes 1, 10,
100.

- ledger:    the batch API (idempotency, limits, entries, DB-enforced integrity checks).
- reference: the bare minimum for a transfer, as one statement per batch too: insert the
             transfers, add the amounts to the two balances; no checks, no entries.

Many payments in flight (issue #20): 64 concurrent payments, each a hold then its post (one
transfer per activity, as the payment workflow moves money), through a pool of 20
connections (a worker's), each transfer sent alone (`create_transfer`) or through the
worker's micro-batcher (ledger/batcher.py, 2 ms window), alternating slices in one run.

Two ways of calling, each measured for both sides:
- own transaction: `ledger.create_transfers`, which sends its one statement in autocommit
  (one round trip; the server commits as the statement ends); the reference statement alike.
- in a transaction: `ledger.create_transfers_in` between the caller's BEGIN and COMMIT (three
  round trips, the row locks held until the client's COMMIT arrives); the reference alike.

The runs alternate in short slices (reference, ledger, ledger, reference, …: each goes first
every other round) so that machine noise, which on a shared machine comes in bursts of
seconds, hits both alike; the tables pool each side's slices (transfers over time, latencies
of every batch). Not a test: figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kernel.settings import Settings
from ledger import (
    AccountSpec,
    Transfer,
    TransferKind,
    create_accounts,
    create_transfer,
    create_transfers,
    create_transfers_in,
    verify_ledger,
)
from ledger.batcher import TransferBatcher
from ops.devstack import free_port
from ops.embedded_pg import EmbeddedPostgres
from ops.migrate import upgrade

ACCOUNTS = 1_000
CLIENTS = 8
ZIPF_S = 1.1

REFERENCE_SCHEMA = """
CREATE TABLE IF NOT EXISTS bench_accounts (
    id text PRIMARY KEY, debits_posted bigint NOT NULL DEFAULT 0,
    credits_posted bigint NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS bench_transfers (
    id text PRIMARY KEY, debit_account_id text NOT NULL, credit_account_id text NOT NULL,
    amount bigint NOT NULL);
"""
# insert + balance updates, nothing else (accounts touched in id order so that the
# reference, too, never deadlocks and the comparison is about the work, not retries)
REFERENCE_BATCH = text("""
WITH t AS (
    INSERT INTO bench_transfers
    SELECT * FROM jsonb_to_recordset(CAST(:events AS jsonb))
        AS x(id text, debit_account_id text, credit_account_id text, amount bigint)
    RETURNING debit_account_id, credit_account_id, amount
), deltas AS (
    SELECT account, sum(d) AS d, sum(c) AS c FROM (
        SELECT debit_account_id AS account, amount AS d, 0 AS c FROM t
        UNION ALL SELECT credit_account_id, 0, amount FROM t) legs
    GROUP BY account
), locked AS (
    SELECT a.id FROM bench_accounts a JOIN deltas ON deltas.account = a.id
    ORDER BY a.id FOR UPDATE OF a
)
UPDATE bench_accounts a SET debits_posted = a.debits_posted + deltas.d,
                            credits_posted = a.credits_posted + deltas.c
FROM deltas, locked WHERE a.id = deltas.account AND locked.id = a.id
""")


Submit = Callable[[list[tuple[str, str, str]]], Awaitable[None]]


@dataclass
class Run:
    """One measured run of one system at one batch size."""

    system: str
    batch: int
    transfers: int
    seconds: float
    latencies_ms: list[float]

    @property
    def per_second(self) -> float:
        """Transfers per second."""
        return self.transfers / self.seconds

    def percentile(self, q: float) -> float:
        """Batch latency percentile in milliseconds."""
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def zipf_weights(n: int, s: float) -> list[float]:
    """Zipf weights over ranks 1..n: a few hot accounts take most transfers."""
    return [1.0 / (rank**s) for rank in range(1, n + 1)]


def pairs(
    rng: random.Random, ids: list[str], weights: list[float], count: int
) -> list[tuple[str, str]]:
    """`count` (debit, credit) pairs of distinct accounts, Zipf-skewed."""
    out: list[tuple[str, str]] = []
    while len(out) < count:
        debit, credit = rng.choices(ids, weights, k=2)
        if debit != credit:
            out.append((debit, credit))
    return out


async def drive(
    name: str,
    batch: int,
    seconds: float,
    submit: Submit,
    ids: list[str],
    weights: list[float],
    seed: int,
) -> Run:
    """Run CLIENTS concurrent clients for `seconds`, each sending batches of `batch`."""
    latencies: list[float] = []
    done = 0
    stop_at = time.perf_counter() + seconds

    async def client(index: int) -> None:
        nonlocal done
        rng = random.Random(seed * 1000 + index)
        while time.perf_counter() < stop_at:
            events = [
                (f"{name}-{uuid.uuid4().hex}", d, c) for d, c in pairs(rng, ids, weights, batch)
            ]
            started = time.perf_counter()
            await submit(events)
            latencies.append((time.perf_counter() - started) * 1000)
            done += len(events)

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    return Run(name, batch, done, time.perf_counter() - started, latencies)


REGIMES = ("own transaction", "in a transaction")
RETRYABLE = {"40P01", "40001", "23505"}  # as ledger.engine retries


async def setup(engine: AsyncEngine) -> list[str]:
    """The same 1,000 accounts for both systems; returns their ids."""
    ids = [f"acc_bench_{i:04d}" for i in range(ACCOUNTS)]
    await create_accounts(engine, [AccountSpec(id=i, currency="EUR", kind="fees") for i in ids])
    async with engine.begin() as conn:
        for statement in REFERENCE_SCHEMA.split(";"):
            if statement.strip():
                await conn.execute(text(statement))
        await conn.execute(
            text("INSERT INTO bench_accounts (id) SELECT unnest(CAST(:ids AS text[]))"),
            {"ids": ids},
        )
    return ids


def submitters(engine: AsyncEngine, regime: str) -> tuple[Submit, Submit]:
    """The (reference, ledger) calls of a regime: the same connection handling for both."""

    async def reference_statement(events: list[tuple[str, str, str]]) -> None:
        payload = json.dumps(
            [
                {"id": i, "debit_account_id": d, "credit_account_id": c, "amount": 1}
                for i, d, c in events
            ]
        )
        for attempt in range(5):
            try:
                if regime == "own transaction":
                    async with engine.connect() as conn:
                        await conn.execution_options(isolation_level="AUTOCOMMIT")
                        await conn.execute(REFERENCE_BATCH, {"events": payload})
                else:
                    async with engine.begin() as conn:
                        await conn.execute(REFERENCE_BATCH, {"events": payload})
                return
            except DBAPIError as error:
                if getattr(error.orig, "sqlstate", None) not in RETRYABLE or attempt == 4:
                    raise

    async def ledger_call(events: list[tuple[str, str, str]]) -> None:
        batch = [Transfer(i, d, c, 1, "EUR", "bench") for i, d, c in events]
        if regime == "own transaction":
            results = await create_transfers(engine, batch)
        else:
            for attempt in range(5):
                try:
                    async with engine.begin() as conn:
                        results = await create_transfers_in(conn, batch)
                    break
                except DBAPIError as error:
                    if getattr(error.orig, "sqlstate", None) not in RETRYABLE or attempt == 4:
                        raise
        assert all(r.value == "ok" for r in results), results

    return reference_statement, ledger_call


async def settle(engine: AsyncEngine) -> None:
    """Vacuum both systems' tables and checkpoint, so that the writes of one phase (batches of
    100 leave a lot to flush and vacuum) do not slow down the next one's commits."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(
            text(
                "VACUUM (ANALYZE) ledger_accounts, ledger_transfers, ledger_entries,"
                " ledger_transfer_failures, bench_accounts, bench_transfers"
            )
        )
        await conn.execute(text("CHECKPOINT"))


async def benchmark(
    engine: AsyncEngine, ids: list[str], regime: str, seconds: float, rounds: int
) -> list[tuple[Run, Run]]:
    """Alternate reference and ledger slices at each batch size; pool each side's slices."""
    weights = zipf_weights(ACCOUNTS, ZIPF_S)
    reference_submit, ledger_submit = submitters(engine, regime)
    results: list[tuple[Run, Run]] = []
    for batch in (1, 10, 100):
        if regime != REGIMES[0] or batch != 1:  # nothing to settle before the first phase
            await settle(engine)
        references: list[Run] = []
        ledgers: list[Run] = []
        for round_ in range(rounds):
            seed = batch * 1000 + round_
            sides = [
                ("reference", reference_submit, references),
                ("ledger", ledger_submit, ledgers),
            ]
            for name, submit, runs in sides if round_ % 2 == 0 else sides[::-1]:
                runs.append(await drive(name, batch, seconds, submit, ids, weights, seed))
        results.append((_pooled(references), _pooled(ledgers)))
    return results


def _pooled(runs: list[Run]) -> Run:
    return Run(
        runs[0].system,
        runs[0].batch,
        sum(r.transfers for r in runs),
        sum(r.seconds for r in runs),
        [latency for r in runs for latency in r.latencies_ms],
    )


def report(regime: str, results: list[tuple[Run, Run]]) -> str:
    """One regime's table."""
    lines = [
        f"{regime}:",
        f"{'batch':>5} | {'reference/s':>11} {'p50 ms':>7} {'p99 ms':>7} | "
        f"{'ledger/s':>9} {'p50 ms':>7} {'p99 ms':>7} | {'ratio':>5}",
    ]
    for reference, ledger in results:
        lines.append(
            f"{ledger.batch:>5} | {reference.per_second:>11,.0f} {reference.percentile(0.5):>7.2f} "
            f"{reference.percentile(0.99):>7.2f} | {ledger.per_second:>9,.0f} "
            f"{ledger.percentile(0.5):>7.2f} {ledger.percentile(0.99):>7.2f} | "
            f"{ledger.per_second / reference.per_second:>5.2f}"
        )
    return "\n".join(lines)


IN_FLIGHT = 64
WORKER_POOL = 20  # a worker process's connections (database.pool_size + overflow)
SHARDS = 16  # settlement shards: the first accounts take every payment's credit leg
IN_FLIGHT_MODES = ("alone", "batched")


async def payments_in_flight(
    engine: AsyncEngine, ids: list[str], mode: str, seconds: float, seed: int
) -> tuple[Run, TransferBatcher | None]:
    """IN_FLIGHT payments at once for `seconds`, each a hold then its post; the run (its
    latencies are whole payments') and the batcher, when batching."""
    batcher = TransferBatcher(engine, window=0.002) if mode == "batched" else None
    latencies: list[float] = []
    done = 0
    stop_at = time.perf_counter() + seconds

    async def move(transfer: Transfer) -> None:
        if batcher is not None:
            result = await batcher.create(transfer)
        else:
            result = await create_transfer(engine, transfer)
        if not result.succeeded:
            raise RuntimeError(f"{transfer.id}: {result.value}")

    async def payment_loop(index: int) -> None:
        nonlocal done
        rng = random.Random(seed * 1000 + index)
        while time.perf_counter() < stop_at:
            payment = f"pif-{mode}-{uuid.uuid4().hex}"
            debit, credit = rng.choice(ids[SHARDS:]), ids[index % SHARDS]
            started = time.perf_counter()
            await move(
                Transfer(
                    f"{payment}:hold", debit, credit, 1, "EUR", "payment_hold", TransferKind.PENDING
                )
            )
            await move(
                Transfer(
                    f"{payment}:post",
                    None,
                    None,
                    None,
                    None,
                    "payment_post",
                    TransferKind.POST_PENDING,
                    pending_id=f"{payment}:hold",
                )
            )
            latencies.append((time.perf_counter() - started) * 1000)
            done += 2

    started = time.perf_counter()
    await asyncio.gather(*(payment_loop(i) for i in range(IN_FLIGHT)))
    return Run(mode, 1, done, time.perf_counter() - started, latencies), batcher


async def in_flight_table(url: str, ids: list[str], seconds: float, rounds: int) -> str:
    """Both modes in alternating slices (each first every other round); the table."""
    engine = create_async_engine(url, pool_size=WORKER_POOL, max_overflow=0)
    pooled: dict[str, list[Run]] = {mode: [] for mode in IN_FLIGHT_MODES}
    sizes: list[float] = []
    for r in range(rounds):
        order = IN_FLIGHT_MODES if r % 2 == 0 else IN_FLIGHT_MODES[::-1]
        for mode in order:
            run, batcher = await payments_in_flight(engine, ids, mode, seconds, r)
            pooled[mode].append(run)
            if batcher is not None and batcher.batches:
                sizes.append(batcher.transfers / batcher.batches)
    await engine.dispose()
    lines = [
        f"\nmany payments in flight: {IN_FLIGHT} payments (hold, then post), a pool of"
        f" {WORKER_POOL} connections",
        f"{'mode':<9} {'transfers':>9} {'transfers/s':>12} {'payment p50 ms':>15} {'p99 ms':>8}",
    ]
    rate: dict[str, float] = {}
    for mode, runs in pooled.items():
        whole = Run(
            mode,
            1,
            sum(x.transfers for x in runs),
            sum(x.seconds for x in runs),
            [v for x in runs for v in x.latencies_ms],
        )
        rate[mode] = whole.per_second
        lines.append(
            f"{mode:<9} {whole.transfers:>9,} {whole.per_second:>12,.0f}"
            f" {whole.percentile(0.5):>15.1f} {whole.percentile(0.99):>8.1f}"
        )
    average = sum(sizes) / len(sizes) if sizes else 0.0
    lines.append(
        f"batched/alone: {rate['batched'] / rate['alone']:.2f}x"
        f" (mean batch {average:.1f} transfers)"
    )
    return "\n".join(lines)


async def main(
    seconds: float, rounds: int, in_flight_rounds: int = 6, *, only_in_flight: bool = False
) -> None:
    """Start a private PostgreSQL, benchmark, verify the ledger, print the tables."""
    data = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    postgres = EmbeddedPostgres(data / "postgres", free_port())
    postgres.start()
    try:
        upgrade(Settings().updated({"database.url": postgres.url}))
        engine = create_async_engine(postgres.url, pool_size=CLIENTS, max_overflow=0)
        ids = await setup(engine)
        tables = [
            report(regime, await benchmark(engine, ids, regime, seconds, rounds))
            for regime in REGIMES
            if not only_in_flight
        ]
        tables.append(await in_flight_table(postgres.url, ids, seconds, in_flight_rounds))
        verified = await verify_ledger(engine)
        await engine.dispose()
        print(
            f"{CLIENTS} clients, {ACCOUNTS} accounts, Zipf s={ZIPF_S}; {rounds} alternating"
            f" rounds of {seconds:g} s per side"
        )
        print("\n".join(tables))
        print(
            f"ledger verify after the run: {'OK' if verified.ok else verified.problems[0]} "
            f"({verified.transfers:,} transfers, {verified.entries:,} entries)"
        )
    finally:
        postgres.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per slice")
    parser.add_argument("--rounds", type=int, default=10, help="alternating slices per side")
    parser.add_argument(
        "--in-flight-rounds", type=int, default=6, help="alternating slices per in-flight mode"
    )
    parser.add_argument("--only-in-flight", action="store_true", help="skip the batch-size phases")
    arguments = parser.parse_args()
    asyncio.run(
        main(
            arguments.seconds,
            arguments.rounds,
            arguments.in_flight_rounds,
            only_in_flight=arguments.only_in_flight,
        )
    )
