"""Reconciliation activity: fetch a rail's camt.053 statement, compare it with the ledger,
store the run and every discrepancy, and log each one for alerting.

Besides the rail's payments and returns, the statement's incoming credits are matched with
the deposits credited that day in the rail's currency, by the bank reference each deposit
names. A deposit without a bank reference cannot be matched with anything the bank booked:
it is reported missing from the statement under its own id, for ops to account for.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import structlog
from sqlalchemy import Select, delete, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from activities.metrics import count
from iso20022.camt053 import parse_camt053
from kernel.settings import Settings
from kernel.tables import deposits, reconciliation_discrepancies, reconciliation_runs
from rails.reconcile import Booking, Reconciliation, reconcile
from rails.windows import ACH_TIMEZONE
from workflows.models import ReconcileRailInput, ReconcileResult

log = structlog.get_logger()

# the bank books SEPA on UTC dates and ACH on New York dates; so does our side of the match
BOOKING_ZONE = {"sepa": ZoneInfo("UTC"), "ach": ZoneInfo(ACH_TIMEZONE)}
# the currency each rail's account at the bank holds: where a deposit's money arrives
RAIL_CURRENCY = {"sepa": "EUR", "ach": "USD"}
# A day's bookings of a rail's payments: posts, and returns (of an ACH payment whose recall the
# bank accepted: its reversal entry, own trace number, `recall-<payment id>`). Each is booked on
# the day the bank settled it when the bank told us (an ACH file's settlement notice,
# `ach_entries.settled_on`), else on the day the ledger posted it, in the rail's zone: a notice
# that arrives after midnight, or a bank whose clock runs ahead of ours, books on the bank's day,
# as the statement does. Candidates are the transfers posted that day and (ACH only) the
# transfers of the entries settled that day, each found by index. Each lookup by id is a
# LATERAL subquery with LIMIT 1 (ids are unique), which the planner cannot flatten: it stays
# one index probe per candidate, where a join let the planner hash the whole id table or
# merge-join every payment (estimating the settled entries' ids badly) and the day cost grew
# with history (3x from 10k to 100k payments in bench/volume.py).
LEDGER_BOOKINGS = text(
    "WITH candidates AS ("
    " SELECT t.id, t.code, t.amount, t.currency, t.created_at FROM ledger_transfers t"
    " WHERE t.code IN ('payment_post', 'payment_return')"
    " AND t.created_at >= :start AND t.created_at < :end"
    " UNION"
    " SELECT t.id, t.code, t.amount, t.currency, t.created_at FROM ach_entries s"
    " CROSS JOIN LATERAL (SELECT i.id, i.created_at FROM ledger_transfer_ids i"
    " WHERE i.id = CASE WHEN s.payment_id LIKE 'recall-%'"
    " THEN substr(s.payment_id, 8) || '\\:return' ELSE s.payment_id || '\\:post' END"
    " LIMIT 1) i"
    " CROSS JOIN LATERAL (SELECT t.id, t.code, t.amount, t.currency, t.created_at"
    " FROM ledger_transfers t WHERE t.id = i.id AND t.created_at = i.created_at LIMIT 1) t"
    " WHERE s.settled_on = CAST(:day AS date) AND CAST(:rail AS text) = 'ach'"
    ") SELECT * FROM ("
    " SELECT p.id AS payment_id, c.code, c.amount, c.currency,"
    " COALESCE(CASE WHEN c.code = 'payment_return' THEN r.trace_number END, e.trace_number)"
    " AS trace_number,"
    " COALESCE(CASE WHEN c.code = 'payment_return' THEN r.settled_on ELSE e.settled_on END,"
    " (c.created_at AT TIME ZONE CAST(:zone AS text))::date) AS booked_on"
    " FROM candidates c"
    " CROSS JOIN LATERAL (SELECT p.id, p.rail, p.recall FROM payments p"
    " WHERE p.id = split_part(c.id, ':', 1) LIMIT 1) p"
    " LEFT JOIN LATERAL (SELECT e.trace_number, e.settled_on FROM ach_entries e"
    " WHERE e.payment_id = p.id LIMIT 1) e ON true"
    " LEFT JOIN LATERAL (SELECT r.trace_number, r.settled_on FROM ach_entries r"
    " WHERE r.payment_id = 'recall-' || p.id AND p.recall->>'status' = 'accepted' LIMIT 1) r"
    " ON true"
    " WHERE p.rail = :rail"
    ") bookings WHERE booked_on = CAST(:day AS date)"
)


def ledger_bookings_params(day: str, rail: str) -> dict[str, Any]:
    """LEDGER_BOOKINGS' parameters for one rail's statement date."""
    zone = BOOKING_ZONE[rail]
    start = datetime.combine(date.fromisoformat(day), time(), zone)
    return {
        "rail": rail,
        "day": date.fromisoformat(day),
        "zone": zone.key,
        "start": start,
        "end": start + timedelta(days=1),
    }


# a booking the bank made that the ledger lacks, named by a payment's reference: the bank paid
# and the ledger did not post (a payment left ledger_out_of_sync, issue #15)
PAYMENTS_BY_REFERENCE = {
    "sepa": text("SELECT id AS payment_id, id AS reference FROM payments WHERE id = ANY(:refs)"),
    "ach": text(
        "SELECT DISTINCT ON (trace_number) payment_id, trace_number AS reference"
        " FROM ach_entries WHERE trace_number = ANY(:refs)"
        " ORDER BY trace_number, effective_date DESC"
    ),
}


# the statement's zero-amount ACH entries that are prenotes (their entry id is a
# counterparty's): the ledger explains them, since a prenote moves no money
PRENOTES_BY_TRACE = text(
    "SELECT trace_number FROM ach_entries WHERE trace_number = ANY(:refs)"
    " AND payment_id LIKE 'cpt\\_%'"
)


# the statement's ACH entries that are reversals of payments whose recall was rejected (the
# reversal was returned): booked in and out at the bank, nothing in the ledger
REJECTED_REVERSALS_BY_TRACE = text(
    "SELECT e.trace_number FROM ach_entries e"
    " JOIN payments p ON p.id = substr(e.payment_id, 8)"
    " WHERE e.trace_number = ANY(:refs) AND e.payment_id LIKE 'recall-%'"
    " AND p.recall->>'status' = 'rejected'"
)


def credited_deposits_query(currency: str, start: datetime, end: datetime) -> Select[Any]:
    """The deposits credited in `currency` in [start, end) (through `deposits_credited`)."""
    return select(
        deposits.c.id, deposits.c.amount, deposits.c.currency, deposits.c.bank_reference
    ).where(
        deposits.c.status == "credited",
        deposits.c.currency == currency,
        deposits.c.credited_at >= start,
        deposits.c.credited_at < end,
    )


class ReconciliationActivities:
    """Reads the bank's statement over HTTP and our bookings from PostgreSQL."""

    def __init__(self, client: httpx.AsyncClient, engine: AsyncEngine, settings: Settings) -> None:
        self._client = client
        self._engine = engine
        self._settings = settings

    async def _statement(self, day: str, rail: str) -> list[Booking]:
        response = await self._client.get(
            f"{self._settings.rails.bank_url}/v1/statements/{day}", params={"account": rail}
        )
        response.raise_for_status()  # an unreachable bank is retried by the workflow
        statement = parse_camt053(response.content).for_account(rail)
        return [
            Booking(
                entry.direction,
                # an incoming credit is known by the payer's reference, on every rail
                (
                    entry.end_to_end_id
                    if entry.received_credit
                    else entry.tx_id
                    if rail == "ach"
                    else entry.end_to_end_id
                )
                or entry.entry_ref
                or "",
                entry.amount_minor,
                entry.currency,
                incoming=entry.received_credit,
            )
            for entry in statement.entries
        ]

    async def _ledger(self, day: str, rail: str) -> list[Booking]:
        params = ledger_bookings_params(day, rail)
        start, end = params["start"], params["end"]
        async with self._engine.connect() as conn:
            rows = (await conn.execute(LEDGER_BOOKINGS, params)).all()
            credited = (
                await conn.execute(credited_deposits_query(RAIL_CURRENCY[rail], start, end))
            ).all()
        return [
            Booking(
                "CRDT" if row.code == "payment_return" else "DBIT",
                row.trace_number if rail == "ach" else row.payment_id,
                int(row.amount),
                row.currency,
                row.payment_id,
            )
            for row in rows
        ] + [
            Booking(
                "CRDT",
                row.bank_reference or row.id,
                int(row.amount),
                row.currency,
                incoming=True,
                deposit_id=row.id,
            )
            for row in credited
        ]

    async def _name_unposted_payments(self, outcome: Reconciliation, rail: str) -> Reconciliation:
        """A debit the bank booked and the ledger lacks is usually one of our payments whose
        post the ledger refused: name it, so ops find the payment (and its action_reason)."""
        unnamed = [
            found.reference
            for found in outcome.discrepancies
            if found.kind == "missing_in_ledger" and found.payment_id is None
        ]
        if not unnamed:
            return outcome
        async with self._engine.connect() as conn:
            rows = await conn.execute(PAYMENTS_BY_REFERENCE[rail], {"refs": unnamed})
            named = {row.reference: row.payment_id for row in rows}
        return Reconciliation(
            outcome.matched,
            [
                replace(found, payment_id=named.get(found.reference, found.payment_id))
                for found in outcome.discrepancies
            ],
        )

    async def _match_rejected_reversals(self, outcome: Reconciliation, rail: str) -> Reconciliation:
        """A reversal the receiver's bank returned (its recall rejected) is booked twice at the
        bank, in and back out, and not at all in the ledger, which moved nothing: matched."""
        unexplained = [
            found.reference for found in outcome.discrepancies if found.kind == "missing_in_ledger"
        ]
        if rail != "ach" or not unexplained:
            return outcome
        async with self._engine.connect() as conn:
            reversals = set(
                (await conn.execute(REJECTED_REVERSALS_BY_TRACE, {"refs": unexplained})).scalars()
            )
        left = [
            found
            for found in outcome.discrepancies
            if not (found.kind == "missing_in_ledger" and found.reference in reversals)
        ]
        matched = len(outcome.discrepancies) - len(left)
        return Reconciliation(outcome.matched + matched, left)

    async def _match_prenotes(self, outcome: Reconciliation, rail: str) -> Reconciliation:
        """A prenote the statement lists (zero amount, the prenote's trace number) has no
        ledger booking because it moves no money: it is matched, not a discrepancy."""
        zero = [
            found.reference
            for found in outcome.discrepancies
            if found.kind == "missing_in_ledger" and found.statement_amount == 0
        ]
        if rail != "ach" or not zero:
            return outcome
        async with self._engine.connect() as conn:
            prenotes = set((await conn.execute(PRENOTES_BY_TRACE, {"refs": zero})).scalars())
        left = [
            found
            for found in outcome.discrepancies
            if not (found.statement_amount == 0 and found.reference in prenotes)
        ]
        matched = len(outcome.discrepancies) - len(left)
        return Reconciliation(outcome.matched + matched, left)

    @activity.defn(name="reconcile_statement")
    async def reconcile_statement(self, request: ReconcileRailInput) -> ReconcileResult:
        """Match one rail's statement of one day; the run is stored (rerun replaces it)."""
        day, rail = request.statement_date, request.rail
        statement = await self._statement(day, rail)
        ledger = await self._ledger(day, rail)
        outcome = await self._name_unposted_payments(reconcile(ledger, statement), rail)
        outcome = await self._match_prenotes(outcome, rail)
        outcome = await self._match_rejected_reversals(outcome, rail)
        run_id = f"rec_{rail}_{day}"
        values = {
            "statement_date": date.fromisoformat(day),
            "rail": rail,
            "status": "discrepancies" if outcome.discrepancies else "matched",
            "matched": outcome.matched,
            "discrepancies": len(outcome.discrepancies),
            "statement_entries": len(statement),
            "ledger_entries": len(ledger),
        }
        async with self._engine.begin() as conn:
            await conn.execute(
                pg_insert(reconciliation_runs)
                .values(id=run_id, **values)
                .on_conflict_do_update(index_elements=["id"], set_=values)
            )
            await conn.execute(
                delete(reconciliation_discrepancies).where(
                    reconciliation_discrepancies.c.run_id == run_id
                )
            )
            if outcome.discrepancies:
                await conn.execute(
                    insert(reconciliation_discrepancies),
                    [
                        {"run_id": run_id, "seq": seq, **asdict(found)}
                        for seq, found in enumerate(outcome.discrepancies, start=1)
                    ],
                )
        for found in outcome.discrepancies:
            log.error(
                "reconciliation discrepancy",
                run_id=run_id,
                kind=found.kind,
                reference=found.reference,
                ledger_amount=found.ledger_amount,
                statement_amount=found.statement_amount,
            )
            count(
                "payments_reconciliation_discrepancies",
                "Bank statement bookings the ledger disagrees with",
                rail=rail,
                kind=found.kind,
            )
        return ReconcileResult(run_id, rail, day, outcome.matched, len(outcome.discrepancies))
