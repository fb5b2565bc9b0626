"""Monthly partitions of the append-only tables (migration 0022): created ahead, listed.

`partitions_ensure` (SQL) creates every missing month's partition of the five partitioned
tables; the daily `partition-maintenance` schedule runs it for the current month and the
configured months ahead, so a row never arrives for a month without its partition. Months
that were archived are never recreated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

PARTITIONED = (
    "ledger_transfers",
    "ledger_entries",
    "audit_log",
    "events",
    "payment_status_history",
)

ENSURE = text("SELECT partitions_ensure(CAST(:start AS timestamptz), CAST(:end AS timestamptz))")

# the live partitions of one table with their month and estimated rows (catalog only)
LIVE = text("""
    SELECT c.relname, c.reltuples::bigint AS estimated_rows
      FROM pg_inherits i
      JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = CAST(:table AS regclass)
     ORDER BY c.relname
""")


def month_start(at: datetime) -> date:
    """The first day of `at`'s month, in UTC."""
    at = at.astimezone(UTC)
    return date(at.year, at.month, 1)


def add_months(month: date, months: int) -> date:
    """The first day of the month `months` after `month`'s."""
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(table: str, month: date) -> str:
    """`<table>_pYYYYMM`, the name migration 0022 and `partitions_ensure` give a month."""
    return f"{table}_p{month:%Y%m}"


async def ensure_partitions(
    engine: AsyncEngine, months_ahead: int, now: datetime | None = None
) -> int:
    """Create the partitions of this month and the `months_ahead` after it (those missing);
    answers how many were created. Safe to repeat or to run from two workers at once."""
    current = month_start(now or datetime.now(UTC))
    last = add_months(current, months_ahead)
    async with engine.begin() as conn:
        created: int = (
            await conn.execute(
                ENSURE,
                {
                    "start": datetime(current.year, current.month, 1, tzinfo=UTC),
                    "end": datetime(last.year, last.month, 1, tzinfo=UTC),
                },
            )
        ).scalar_one()
    return created


@dataclass(frozen=True)
class Partition:
    """One live month of a partitioned table."""

    table: str
    name: str
    month: date
    estimated_rows: int


async def live_partitions(conn: AsyncConnection, table: str) -> list[Partition]:
    """The months of `table` still in the database, oldest first."""
    rows = await conn.execute(LIVE, {"table": table})
    return [
        Partition(
            table,
            row.relname,
            date(int(row.relname[-6:-2]), int(row.relname[-2:]), 1),
            max(int(row.estimated_rows), 0),
        )
        for row in rows
    ]
