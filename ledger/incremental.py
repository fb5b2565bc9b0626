"""Verify what the ledger wrote since its last checkpoint: the hourly check (issue #23).

The full check (`ledger.verify`) reads every entry; this one reads the entries written since
the last checkpoint, found through each account's version. An account's entries form a
chain (versions 1..n, written under the account's row lock), and `ledger_verified_accounts`
holds, per account, the version and balances the last checkpoint verified. So:

1. one pass over the accounts finds those whose row differs from its verified state; an
   account whose balances changed while its version did not (or went back) is a problem;
2. for those, only the entries after the verified version are read (primary key ranges):
   they must continue the chain from the verified balances (versions contiguous, each
   entry's balances = the previous ones + its deltas), and the last one must equal the
   account's row;
3. every transfer those entries belong to has exactly two entries, on its debit and credit
   accounts, whose movements are equal, so the new deltas sum to zero per currency;
4. per currency, the accounts' balances sum to zero (one pass over the accounts).

A transfer's two legs commit together, and an account's version is read in the same
snapshot as its entries, so an entry still being written when a run starts is simply found
by the next run: nothing is skipped for having committed late.

What this does not see: a change to an entry at or before its account's verified version
(history the full check covers), and a transfer row without any entry (the database refuses
both; `payments ledger verify --full` checks them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledger.tables import ledger_verified_accounts
from ledger.verify import ZERO_SUM

BALANCES = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")

# Accounts whose row differs from the state the last checkpoint verified, with that state
# (zeros for an account no checkpoint has seen). Temporary tables: the checks below read
# them several times, and ANALYZE gives the planner their real sizes.
_CHANGED = text("""
    CREATE TEMP TABLE verify_changed ON COMMIT DROP AS
    SELECT a.id, a.currency, a.version, a.debits_pending, a.debits_posted, a.credits_pending,
           a.credits_posted, coalesce(v.version, 0) AS v0,
           coalesce(v.debits_pending, 0) AS dp0, coalesce(v.debits_posted, 0) AS dpo0,
           coalesce(v.credits_pending, 0) AS cp0, coalesce(v.credits_posted, 0) AS cpo0
      FROM ledger_accounts a
      LEFT JOIN ledger_verified_accounts v ON v.account_id = a.id
     WHERE (a.version, a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
           IS DISTINCT FROM (coalesce(v.version, 0), coalesce(v.debits_pending, 0),
                             coalesce(v.debits_posted, 0), coalesce(v.credits_pending, 0),
                             coalesce(v.credits_posted, 0))
""")

# The entries after each changed account's verified version: a range of the primary key per
# account. The subquery is LATERAL with OFFSET 0 so that it stays a lookup per account: as a
# plain join the planner may hash the whole entries table (history) instead.
_FRESH = text("""
    CREATE TEMP TABLE verify_fresh ON COMMIT DROP AS
    SELECT e.*, c.v0, c.dp0, c.dpo0, c.cp0, c.cpo0
      FROM verify_changed c
     CROSS JOIN LATERAL (
         SELECT * FROM ledger_entries e WHERE e.account_id = c.id AND e.version > c.v0
         OFFSET 0) e
""")

_COUNTS = text("""
    SELECT (SELECT count(*) FROM verify_changed), (SELECT count(*) FROM verify_fresh),
           (SELECT count(DISTINCT transfer_id) FROM verify_fresh)
""")

_WENT_BACK = text("""
    SELECT id, v0, version FROM verify_changed WHERE version <= v0 ORDER BY id LIMIT 1
""")

_CHAIN = text("""
    SELECT account_id, version FROM (
        SELECT f.*, v0 + row_number() OVER w AS expected_version,
               coalesce(lag(debits_pending) OVER w, dp0) + debits_pending_delta AS dpe,
               coalesce(lag(debits_posted) OVER w, dpo0) + debits_posted_delta AS dpo,
               coalesce(lag(credits_pending) OVER w, cp0) + credits_pending_delta AS cpe,
               coalesce(lag(credits_posted) OVER w, cpo0) + credits_posted_delta AS cpo
          FROM verify_fresh f
        WINDOW w AS (PARTITION BY account_id ORDER BY version)) x
     WHERE version <> expected_version
        OR (debits_pending, debits_posted, credits_pending, credits_posted)
           <> (dpe, dpo, cpe, cpo)
     ORDER BY account_id, version LIMIT 1
""")

# The account's row equals its verified state plus the new entries, and its version counts
# them.
_ACCOUNTS = text("""
    WITH sums AS (
        SELECT account_id, count(*) AS n, sum(debits_pending_delta) AS dpe,
               sum(debits_posted_delta) AS dpo, sum(credits_pending_delta) AS cpe,
               sum(credits_posted_delta) AS cpo
          FROM verify_fresh GROUP BY account_id)
    SELECT c.id, c.v0, c.version, coalesce(s.n, 0)
      FROM verify_changed c LEFT JOIN sums s ON s.account_id = c.id
     WHERE (c.version, c.debits_pending, c.debits_posted, c.credits_pending, c.credits_posted)
           IS DISTINCT FROM (c.v0 + coalesce(s.n, 0), c.dp0 + coalesce(s.dpe, 0),
                             c.dpo0 + coalesce(s.dpo, 0), c.cp0 + coalesce(s.cpe, 0),
                             c.cpo0 + coalesce(s.cpo, 0))
     ORDER BY c.id LIMIT 1
""")

# Every transfer with a new entry: both its legs are new (written in one transaction, each
# moving its account past the verified version), so they are read from the new entries, not
# from history: exactly two, one per leg, on the transfer's accounts, equal movements. The
# transfer itself is one primary-key lookup each (LATERAL, OFFSET 0: never a hash of the
# whole transfers table).
_TRANSFERS = text("""
    WITH legs AS (
        SELECT transfer_id, count(*) AS n, count(*) FILTER (WHERE leg = 'debit') AS debit_legs,
               sum(debits_pending_delta + debits_posted_delta) AS debits,
               sum(credits_pending_delta + credits_posted_delta) AS credits,
               min(account_id) FILTER (WHERE leg = 'debit') AS debit_account,
               min(account_id) FILTER (WHERE leg = 'credit') AS credit_account
          FROM verify_fresh GROUP BY transfer_id),
    problems AS MATERIALIZED (
        SELECT l.*, t.id AS found, t.debit_account_id, t.credit_account_id
          FROM legs l
          LEFT JOIN LATERAL (
              SELECT id, debit_account_id, credit_account_id FROM ledger_transfers
               WHERE id = l.transfer_id OFFSET 0) t ON true
         WHERE t.id IS NULL OR l.n <> 2 OR l.debit_legs <> 1
            OR l.debits IS DISTINCT FROM l.credits
            OR l.debit_account IS DISTINCT FROM t.debit_account_id
            OR l.credit_account IS DISTINCT FROM t.credit_account_id)
    SELECT transfer_id, found, n, debit_legs, debits, credits,
           (debit_account IS DISTINCT FROM debit_account_id
            OR credit_account IS DISTINCT FROM credit_account_id) AS misplaced
      FROM problems ORDER BY transfer_id LIMIT 1
""")

_STATES = text("""
    SELECT id, version, debits_pending, debits_posted, credits_pending, credits_posted
      FROM verify_changed ORDER BY id
""")

_TOTALS = text("""
    SELECT currency, sum(debits_pending), sum(debits_posted), sum(credits_pending),
           sum(credits_posted)
      FROM ledger_accounts GROUP BY currency ORDER BY currency
""")


@dataclass(frozen=True)
class AccountState:
    """An account's version and four balances, as verified."""

    account_id: str
    version: int
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int


@dataclass
class IncrementalReport:
    """What an incremental run checked, the first problem of each kind, and (when it is
    sound) the verified state a checkpoint records."""

    accounts_changed: int = 0
    entries: int = 0
    transfers: int = 0
    problems: list[str] = field(default_factory=list)
    states: list[AccountState] = field(default_factory=list)
    # per currency: debits_pending, debits_posted, credits_pending, credits_posted
    totals: dict[str, list[int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when no check found a discrepancy."""
        return not self.problems


async def _problems(conn: AsyncConnection) -> list[str]:
    problems: list[str] = []
    row = (await conn.execute(_WENT_BACK)).first()
    if row is not None:
        problems.append(
            f"account {row[0]}: changed without new entries (verified at version {row[1]}, "
            f"now version {row[2]})"
        )
    row = (await conn.execute(_CHAIN)).first()
    if row is not None:
        problems.append(f"account {row[0]}: entry chain broken at version {row[1]}")
    row = (await conn.execute(_ACCOUNTS)).first()
    if row is not None:
        problems.append(
            f"account {row[0]}: balances differ from its verified state (version {row[1]}) "
            f"plus its {row[3]} new entries (now version {row[2]})"
        )
    row = (await conn.execute(_TRANSFERS)).first()
    if row is not None:
        if row.found is None:
            problems.append(f"transfer {row.transfer_id}: entries of a transfer that is missing")
        else:
            problems.append(
                f"transfer {row.transfer_id}: {row.n} new entries ({row.debit_legs} debit), "
                f"debits {row.debits} vs credits {row.credits}"
                + (", on other accounts than its legs'" if row.misplaced else "")
            )
    row = (await conn.execute(ZERO_SUM)).first()
    if row is not None:
        problems.append(
            f"currency {row[0]}: balances do not sum to zero "
            f"(posted off by {row[1]}, pending off by {row[2]})"
        )
    return problems


async def verify_since_checkpoint(engine: AsyncEngine) -> IncrementalReport:
    """Check what was written since the verified state, in one consistent snapshot
    (REPEATABLE READ); the report carries the changed accounts' new state when sound."""
    report = IncrementalReport()
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            await conn.execute(_CHANGED)
            await conn.execute(text("ANALYZE verify_changed"))
            await conn.execute(_FRESH)
            await conn.execute(text("ANALYZE verify_fresh"))
            report.accounts_changed, report.entries, report.transfers = (
                await conn.execute(_COUNTS)
            ).one()
            report.problems = await _problems(conn)
            if report.ok:
                report.states = [AccountState(*row) for row in await conn.execute(_STATES)]
                report.totals = await totals(conn)
    return report


async def totals(conn: AsyncConnection) -> dict[str, list[int]]:
    """Per currency: the sums of the accounts' four balances (what a checkpoint records)."""
    return {row[0]: [int(v) for v in row[1:]] for row in await conn.execute(_TOTALS)}


async def current_states(conn: AsyncConnection) -> tuple[list[AccountState], dict[str, Any]]:
    """Every account's state and the per-currency totals (what a full check verified, read
    in its snapshot)."""
    rows = await conn.execute(
        text(
            "SELECT id, version, debits_pending, debits_posted, credits_pending,"
            " credits_posted FROM ledger_accounts ORDER BY id"
        )
    )
    return [AccountState(*row) for row in rows], await totals(conn)


async def record_verified_states(
    conn: AsyncConnection, states: list[AccountState], checkpoint_id: int, chunk: int = 5_000
) -> None:
    """Make `states` the verified state of their accounts (inside the caller's transaction,
    with the checkpoint that verified them). A state never replaces a newer one: two runs
    that overlap leave the higher version."""
    for start in range(0, len(states), chunk):
        rows = [
            {
                "account_id": s.account_id,
                "version": s.version,
                "debits_pending": s.debits_pending,
                "debits_posted": s.debits_posted,
                "credits_pending": s.credits_pending,
                "credits_posted": s.credits_posted,
                "checkpoint_id": checkpoint_id,
            }
            for s in states[start : start + chunk]
        ]
        statement = insert(ledger_verified_accounts).values(rows)
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=[ledger_verified_accounts.c.account_id],
                set_={
                    name: statement.excluded[name]
                    for name in ("version", *BALANCES, "checkpoint_id")
                },
                where=ledger_verified_accounts.c.version <= statement.excluded.version,
            )
        )
