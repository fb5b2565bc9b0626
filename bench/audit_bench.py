"""Audit append benchmark: one chain for everyone against a chain per tenant, one run.

    make bench-audit        (or: .venv/bin/python bench/audit_bench.py --rounds 6)

32 writers (8 tenants, 4 writers each) append decisions as fast as they can through
`kernel.audit.append` (its own transaction per record, as an activity appends), against a
private PostgreSQL:

- single:  every record extends the platform chain: one advisory lock and one head for
           everyone, which is what every append took before the chains were split.
- tenants: each record extends its tenant's chain: 8 locks and 8 heads, so a writer only
           waits for the writers of its own tenant.

The two alternate in short slices (each goes first every other round) so that the noise
of a shared machine hits both alike; the table pools each side's slices. Both chains are
verified at the end. Not a test: figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kernel import audit
from kernel.settings import Settings
from ops.devstack import free_port
from ops.embedded_pg import EmbeddedPostgres
from ops.migrate import upgrade

MODES = ("single", "tenants")


def percentile(values: list[float], q: float) -> float:
    """The q-quantile of `values` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def slice_(
    engine: AsyncEngine, mode: str, writers: int, tenants: int, seconds: float, label: str
) -> tuple[int, float, list[float]]:
    """`writers` appenders for `seconds`: how many records, in how long, each's latency."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def writer(i: int) -> None:
        tenant = f"ten_{i % tenants}" if mode == "tenants" else None
        n = 0
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            await audit.append(
                engine,
                actor="bench",
                action="payment.initiated",
                subject=f"pay_{label}_{i}_{n}",
                tenant_id=tenant,
                detail={"amount": 1_000, "currency": "EUR", "rail": "sepa", "writer": i},
                idempotency_key=f"{label}:{i}:{n}",
            )
            latencies.append(time.perf_counter() - began)
            n += 1

    began = time.perf_counter()
    await asyncio.gather(*(writer(i) for i in range(writers)))
    return len(latencies), time.perf_counter() - began, latencies


async def main(writers: int, tenants: int, seconds: float, rounds: int) -> None:
    """Start a private PostgreSQL, alternate the two modes, verify, print the table."""
    data = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    postgres = EmbeddedPostgres(data / "postgres", free_port())
    postgres.start()
    try:
        upgrade(Settings().updated({"database.url": postgres.url}))
        engine = create_async_engine(postgres.url, pool_size=writers, max_overflow=0)
        # warm the pool and the caches
        await slice_(engine, "tenants", writers, tenants, min(seconds, 0.5), "warm")
        pooled: dict[str, tuple[int, float, list[float]]] = {m: (0, 0.0, []) for m in MODES}
        per_round: list[float] = []
        for r in range(rounds):
            order = MODES if r % 2 == 0 else MODES[::-1]
            rates: dict[str, float] = {}
            for mode in order:
                count, took, lat = await slice_(
                    engine, mode, writers, tenants, seconds, f"{mode}{r}"
                )
                total, elapsed, all_lat = pooled[mode]
                pooled[mode] = (total + count, elapsed + took, all_lat + lat)
                rates[mode] = count / took
            per_round.append(rates["tenants"] / rates["single"])
        report = await audit.verify(engine)
        await engine.dispose()
    finally:
        postgres.stop()
    print(
        f"audit appends: {writers} writers, {tenants} tenants, {rounds} rounds of {seconds}s"
        " per mode, alternating"
    )
    print(f"{'mode':<9} {'appends':>8} {'appends/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    rate = {}
    for mode in MODES:
        total, elapsed, lat = pooled[mode]
        rate[mode] = total / elapsed
        print(
            f"{mode:<9} {total:>8} {rate[mode]:>10.0f} {percentile(lat, 0.5) * 1000:>8.1f}"
            f" {percentile(lat, 0.99) * 1000:>8.1f}"
        )
    rounds_text = ", ".join(f"{x:.2f}" for x in per_round)
    ratio = rate["tenants"] / rate["single"]
    print(f"tenants/single throughput: {ratio:.2f}x (rounds: {rounds_text})")
    print(
        f"audit verify: {'OK' if report.ok else 'FAIL'} ({report.entries} entries,"
        f" {len(report.heads)} chains) {report.problems[:1]}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--tenants", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="per slice")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.writers, args.tenants, args.seconds, args.rounds))
