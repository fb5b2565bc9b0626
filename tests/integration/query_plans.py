"""What a query plan reads: EXPLAIN of the statements the code itself runs, and the scans of a
growing table in it that read more than a bounded number of rows.

A query whose cost does not depend on history reads, in every scan of an append-mostly
table, the rows it returns plus a bounded few: an index serves its equalities and its range
or order. A Seq Scan, or an index scan that filters away the past, reads history instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

# the tables that grow with every payment (or event, or decision) and are never pruned by
# the code paths under test
GROWING_TABLES = frozenset(
    {
        "payments",
        "events",
        "ledger_transfers",
        "ledger_entries",
        "audit_log",
        "payment_status_history",
        "idempotency_keys",
        "webhook_deliveries",
        "ach_entries",
        # pruned past twice the callback signature's tolerance, but as busy as the bank
        "rail_callback_receipts",
        "ledger_transfer_ids",
        "counterparties",
    }
)
# a month's partition of a partitioned table (migration 0022) counts as the table
_PARTITION = re.compile(r"^(?P<table>.+)_p\d{6}$")


def table_of(relation: str) -> str:
    """The table a scanned relation belongs to: itself, or the table it is a month of."""
    month = _PARTITION.match(relation)
    return month["table"] if month else relation


@dataclass(frozen=True)
class Scan:
    """One scan node of a plan: the table, how, and how many rows it read in all loops."""

    table: str
    node: str
    index: str | None
    rows_read: int

    def __str__(self) -> str:
        via = f" using {self.index}" if self.index else ""
        return f"{self.node} on {self.table}{via}: {self.rows_read} rows read"


def explain(conn: Connection, statement: Any, params: dict[str, Any] | None = None) -> Any:
    """The executed plan (JSON) of `statement` with `params` (its own bound values unless
    overridden), run inside the caller's transaction."""
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    values = {**compiled.params, **(params or {})}
    raw = conn.exec_driver_sql(
        f"EXPLAIN (ANALYZE, BUFFERS OFF, FORMAT JSON) {compiled.string}", values
    ).scalar_one()
    plan = json.loads(raw) if isinstance(raw, str) else raw
    return plan[0]["Plan"]


def scans(plan: dict[str, Any]) -> Iterator[Scan]:
    """Every node of `plan` that reads a table."""
    if "Relation Name" in plan:
        loops = int(plan.get("Actual Loops", 1))
        per_loop = (
            float(plan.get("Actual Rows", 0))
            + float(plan.get("Rows Removed by Filter", 0))
            + float(plan.get("Rows Removed by Index Recheck", 0))
        )
        yield Scan(
            table_of(plan["Relation Name"]),
            plan["Node Type"],
            plan.get("Index Name"),
            round(per_loop * loops),
        )
    for child in plan.get("Plans", []):
        yield from scans(child)


def history_scans(plan: dict[str, Any], budget: int) -> list[Scan]:
    """The scans of growing tables that read history: any Seq Scan, or more than `budget` rows."""
    return [
        scan
        for scan in scans(plan)
        if scan.table in GROWING_TABLES and (scan.node == "Seq Scan" or scan.rows_read > budget)
    ]
