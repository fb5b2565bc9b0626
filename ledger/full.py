"""The full ledger check in chunks: every entry, account and transfer, a bounded range at a
time, resumable from a cursor (issue #23; the FullVerification workflow drives it).

`ledger.verify` checks everything in one snapshot and one query per check, which grows with
history until no timeout holds it. Here each chunk is a keyset range of a primary key, read
in a snapshot of its own (REPEATABLE READ, read-only), and the state at its end (the cursor,
the last account's running balances) starts the next one. The checks are those of
`ledger.verify`:

1. entries, in (account, version) order: each account's chain is unbroken (versions 1..n,
   each entry's balances = the previous ones + its deltas; the first entry of a chunk
   continues the account's state carried from the previous chunk);
2. accounts, in id order, alongside the entries: an account whose entries end in the chunk
   has the balances and version of its last entry, an account without entries is zero at
   version 0, and no entry sits on an account that is missing. An account and its entries
   are compared in the same snapshot (the account's row moves with its newest entry, in one
   transaction), so a ledger in use verifies;
3. transfers, in id order, with their entries through `ledger_entries_transfer_idx` over the
   same id range: exactly two entries, a debit leg on the transfer's debit account and a
   credit leg on its credit account, with equal movements; an entry of a missing transfer
   is found in the range its transfer id falls in;
4. per currency, the accounts' balances sum to zero (one pass over the accounts, at the end);
5. the run's start cut (every account's state when it started, in one snapshot): each
   account's entry at that version has that state. A sound run's checkpoint makes the cut
   the incremental check's starting point (a consistent one, unlike the chunks' states).

Every statement reads one range of an index and joins it with another range (or with the
few rows the chunk returned): a healthy ledger costs one pass over each table, never a probe
per row. Rows written after a chunk passed their position are the incremental check's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledger.incremental import totals
from ledger.verify import ZERO_SUM

# Per account of the chunk: its entry count, the first entry that breaks its chain, its last
# entry (version and balances), and whether its entry at the run's start cut differs from
# the state that cut recorded. The chunk is the next `n` entries after the cursor, a range of
# the primary key; an account's first entry in the chunk continues the state the cursor
# carries for it (the cursor's account), or starts from zero (any other account). The cut's
# rows are a range of their primary key too (the chunk's accounts).
ENTRIES_CHUNK = text("""
    WITH chunk AS MATERIALIZED (
        SELECT e.*, coalesce(z.version, 0) AS zv, coalesce(z.debits_pending, 0) AS zdp,
               coalesce(z.debits_posted, 0) AS zdpo, coalesce(z.credits_pending, 0) AS zcp,
               coalesce(z.credits_posted, 0) AS zcpo
          FROM (SELECT account_id, version, debits_pending_delta, debits_posted_delta,
                       credits_pending_delta, credits_posted_delta, debits_pending,
                       debits_posted, credits_pending, credits_posted
                  FROM ledger_entries
                 WHERE (account_id, version) > (:account, :version)
                 ORDER BY account_id, version LIMIT :n) e
          LEFT JOIN ledger_archived_accounts z ON z.account_id = e.account_id),
    steps AS (
        SELECT account_id, version, debits_pending, debits_posted, credits_pending,
               credits_posted,
               version <> coalesce(lag(version) OVER w,
                                   CASE WHEN account_id = :account THEN :version ELSE zv END) + 1
               OR (debits_pending, debits_posted, credits_pending, credits_posted) <> (
                   coalesce(lag(debits_pending) OVER w,
                            CASE WHEN account_id = :account THEN :dp ELSE zdp END)
                   + debits_pending_delta,
                   coalesce(lag(debits_posted) OVER w,
                            CASE WHEN account_id = :account THEN :dpo ELSE zdpo END)
                   + debits_posted_delta,
                   coalesce(lag(credits_pending) OVER w,
                            CASE WHEN account_id = :account THEN :cp ELSE zcp END)
                   + credits_pending_delta,
                   coalesce(lag(credits_posted) OVER w,
                            CASE WHEN account_id = :account THEN :cpo ELSE zcpo END)
                   + credits_posted_delta) AS broken
          FROM chunk
        WINDOW w AS (PARTITION BY account_id ORDER BY version)),
    cut AS (
        SELECT account_id, version, debits_pending, debits_posted, credits_pending,
               credits_posted
          FROM ledger_full_verified_accounts
         WHERE run_key = :run_key AND account_id >= (SELECT min(account_id) FROM chunk)
           AND account_id <= (SELECT max(account_id) FROM chunk))
    SELECT s.account_id, count(*) AS n, min(s.version) FILTER (WHERE s.broken) AS broken_at,
           max(s.version) AS version,
           (array_agg(s.debits_pending ORDER BY s.version DESC))[1] AS debits_pending,
           (array_agg(s.debits_posted ORDER BY s.version DESC))[1] AS debits_posted,
           (array_agg(s.credits_pending ORDER BY s.version DESC))[1] AS credits_pending,
           (array_agg(s.credits_posted ORDER BY s.version DESC))[1] AS credits_posted,
           min(c.version) FILTER (
               WHERE (s.debits_pending, s.debits_posted, s.credits_pending, s.credits_posted)
                     IS DISTINCT FROM (c.debits_pending, c.debits_posted, c.credits_pending,
                                       c.credits_posted)) AS off_cut
      FROM steps s LEFT JOIN cut c ON c.account_id = s.account_id AND c.version = s.version
     GROUP BY s.account_id ORDER BY s.account_id
""")

# The accounts of a chunk's id range against the end states its entries gave them (passed as
# arrays: the accounts whose entries ended in the chunk): a range of the accounts' primary
# key joined with those few rows. `{upper}` bounds the range below the chunk's last account
# (whose entries may go on in the next chunk), or not at all for the last chunk.
_ACCOUNTS = """
    WITH ends AS (
        SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:versions AS bigint[]),
                             CAST(:dps AS bigint[]), CAST(:dpos AS bigint[]),
                             CAST(:cps AS bigint[]), CAST(:cpos AS bigint[]))
                 AS e(account_id, version, debits_pending, debits_posted, credits_pending,
                      credits_posted)),
    accounts AS (
        SELECT a.id, a.version, a.debits_pending, a.debits_posted, a.credits_pending,
               a.credits_posted, z.version AS zv, z.debits_pending AS zdp,
               z.debits_posted AS zdpo, z.credits_pending AS zcp, z.credits_posted AS zcpo
          FROM ledger_accounts a LEFT JOIN ledger_archived_accounts z ON z.account_id = a.id
         WHERE a.id >= :low {upper}),
    problems AS MATERIALIZED (
        SELECT coalesce(a.id, e.account_id) AS id, a.id IS NULL AS missing,
               a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted,
               a.version, coalesce(e.debits_pending, a.zdp, 0) AS dpe,
               coalesce(e.debits_posted, a.zdpo, 0) AS dpoe,
               coalesce(e.credits_pending, a.zcp, 0) AS cpe,
               coalesce(e.credits_posted, a.zcpo, 0) AS cpoe,
               coalesce(e.version, a.zv, 0) AS ve
          FROM accounts a FULL JOIN ends e ON e.account_id = a.id
         WHERE a.id IS NULL
            OR (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted,
                a.version)
               IS DISTINCT FROM (coalesce(e.debits_pending, a.zdp, 0),
                                 coalesce(e.debits_posted, a.zdpo, 0),
                                 coalesce(e.credits_pending, a.zcp, 0),
                                 coalesce(e.credits_posted, a.zcpo, 0),
                                 coalesce(e.version, a.zv, 0)))
    SELECT (SELECT count(*) FROM accounts) AS accounts, p.*
      FROM (SELECT 1) one LEFT JOIN (SELECT * FROM problems ORDER BY id LIMIT 1) p ON true
"""
ACCOUNTS_RANGE = text(_ACCOUNTS.format(upper="AND id < :high"))
ACCOUNTS_REST = text(_ACCOUNTS.format(upper=""))

# How many transfers the next chunk holds and the last of them (an index-only range).
TRANSFERS_BOUND = text("""
    SELECT count(*) AS n, max(id) AS last
      FROM (SELECT id FROM ledger_transfers WHERE id > :after ORDER BY id LIMIT :n) t
""")

# The transfers of an id range and the entries whose transfer id falls in it (the
# transfer-id index over the same range): every transfer has its two legs on its accounts,
# with equal movements, and no entry names a transfer that is missing.
_TRANSFERS = """
    WITH t AS (
        SELECT id, debit_account_id, credit_account_id FROM ledger_transfers
         WHERE id > :after {upper}),
    legs AS (
        SELECT transfer_id, count(*) AS n, count(*) FILTER (WHERE leg = 'debit') AS debit_legs,
               sum(debits_pending_delta + debits_posted_delta) AS debits,
               sum(credits_pending_delta + credits_posted_delta) AS credits,
               min(account_id) FILTER (WHERE leg = 'debit') AS debit_account,
               min(account_id) FILTER (WHERE leg = 'credit') AS credit_account
          FROM ledger_entries WHERE transfer_id > :after {entries_upper}
         GROUP BY transfer_id),
    problems AS MATERIALIZED (
        SELECT coalesce(t.id, l.transfer_id) AS transfer_id, t.id IS NULL AS missing,
               coalesce(l.n, 0) AS n, l.debit_legs, l.debits, l.credits,
               (l.debit_account IS DISTINCT FROM t.debit_account_id
                OR l.credit_account IS DISTINCT FROM t.credit_account_id) AS misplaced
          FROM t FULL JOIN legs l ON l.transfer_id = t.id
         WHERE t.id IS NULL OR l.n IS DISTINCT FROM 2 OR l.debit_legs IS DISTINCT FROM 1
            OR l.debits IS DISTINCT FROM l.credits
            OR l.debit_account IS DISTINCT FROM t.debit_account_id
            OR l.credit_account IS DISTINCT FROM t.credit_account_id)
    SELECT * FROM problems ORDER BY transfer_id LIMIT 1
"""
TRANSFERS_RANGE = text(
    _TRANSFERS.format(upper="AND id <= :high", entries_upper="AND transfer_id <= :high")
)
TRANSFERS_REST = text(_TRANSFERS.format(upper="", entries_upper=""))

# what the progress is measured against, read once at the start without reading history:
# an account's version counts its entries, and a transfer has two of them (exact on a sound
# ledger; an estimate is all a progress bar needs otherwise)
SIZES = text(
    "SELECT coalesce(sum(version), 0)"
    " - (SELECT coalesce(sum(version), 0) FROM ledger_archived_accounts) FROM ledger_accounts"
)


# The run's start: every account's version and balances in one snapshot (a consistent cut of
# the ledger: a transfer's two legs are on both sides of it or on neither). The chunks
# verify each account's entries up to at least that version, and that its entry at that
# version has those balances; when all pass, the cut is what the run verified, and becomes
# the incremental check's starting point (states of later snapshots, one per chunk, would
# split transfers written meanwhile). A retried start keeps the first cut.
START_CUT = text("""
    INSERT INTO ledger_full_verified_accounts (run_key, account_id, version, debits_pending,
                                               debits_posted, credits_pending, credits_posted)
    SELECT :run_key, id, version, debits_pending, debits_posted, credits_pending,
           credits_posted
      FROM ledger_accounts WHERE version > 0
    ON CONFLICT (run_key, account_id) DO NOTHING
""")

# A sound run's cut becomes the accounts' verified state (never replacing a newer one that an
# incremental run recorded meanwhile: a later consistent cut), with its checkpoint; then the
# run's rows go.
ADOPT_STATES = text("""
    INSERT INTO ledger_verified_accounts (account_id, version, debits_pending, debits_posted,
                                          credits_pending, credits_posted, checkpoint_id)
    SELECT account_id, version, debits_pending, debits_posted, credits_pending, credits_posted,
           :checkpoint_id
      FROM ledger_full_verified_accounts WHERE run_key = :run_key
    ON CONFLICT (account_id) DO UPDATE SET
        version = excluded.version, debits_pending = excluded.debits_pending,
        debits_posted = excluded.debits_posted, credits_pending = excluded.credits_pending,
        credits_posted = excluded.credits_posted, checkpoint_id = excluded.checkpoint_id
     WHERE ledger_verified_accounts.version <= excluded.version
""")
DISCARD_STATES = text("DELETE FROM ledger_full_verified_accounts WHERE run_key = :run_key")
DISCARD_OTHER_CUTS = text("DELETE FROM ledger_full_verified_accounts WHERE run_key <> :run_key")


@dataclass(frozen=True)
class Cursor:
    """Where the full check stands: the phase, the last entry checked and its account's
    balances, the last transfer checked, and what it has read so far."""

    phase: str = "entries"  # entries, transfers, done
    account_id: str = ""
    version: int = 0
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0
    transfer_id: str = ""
    entries: int = 0
    accounts: int = 0
    transfers: int = 0


@dataclass
class Chunk:
    """One chunk's outcome: the cursor the next one starts from, and what it found."""

    cursor: Cursor
    rows: int = 0
    problems: list[str] = field(default_factory=list)


async def sizes(engine: AsyncEngine) -> tuple[int, int]:
    """The ledger's entries and transfers now, as the accounts count them (what a progress
    bar counts up to)."""
    async with engine.connect() as conn:
        entries = int((await conn.execute(SIZES)).scalar_one())
    return entries, entries // 2


async def start(engine: AsyncEngine, run_key: str) -> None:
    """Record the run's start cut (every account's state now) under `run_key`."""
    async with engine.begin() as conn:
        # one full verification of the ledger runs at a time (its workflow id is fixed): a
        # cut under another key was left by a run that was terminated
        await conn.execute(DISCARD_OTHER_CUTS, {"run_key": run_key})
        await conn.execute(START_CUT, {"run_key": run_key})


async def verify_chunk(engine: AsyncEngine, cursor: Cursor, n: int, run_key: str) -> Chunk:
    """Check the next chunk of `n` entries, or of `n` transfers once the entries are done,
    in one snapshot (against the start cut recorded under `run_key`)."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            await conn.execute(text("SET TRANSACTION READ ONLY"))
            if cursor.phase == "entries":
                return await _entries_chunk(conn, cursor, n, run_key)
            if cursor.phase == "transfers":
                return await _transfers_chunk(conn, cursor, n)
    return Chunk(cursor)


async def adopt_states(conn: AsyncConnection, run_key: str, checkpoint_id: int) -> None:
    """Make the start cut of the run `run_key` (all of it verified) the accounts' verified
    state, with its checkpoint (inside the caller's transaction)."""
    await conn.execute(ADOPT_STATES, {"run_key": run_key, "checkpoint_id": checkpoint_id})
    await conn.execute(DISCARD_STATES, {"run_key": run_key})


async def discard_states(engine: AsyncEngine, run_key: str) -> None:
    """Forget what the run `run_key` verified (it found a problem)."""
    async with engine.begin() as conn:
        await conn.execute(DISCARD_STATES, {"run_key": run_key})


def _account_problem(row: Any) -> str:
    if row.missing:
        return f"account {row.id}: has entries but is missing"
    return (
        f"account {row.id}: balances (dp={row.debits_pending}, dP={row.debits_posted}, "
        f"cp={row.credits_pending}, cP={row.credits_posted}, version={row.version}) differ "
        f"from its entries (dp={row.dpe}, dP={row.dpoe}, cp={row.cpe}, cP={row.cpoe}, "
        f"entries={row.ve})"
    )


async def _entries_chunk(conn: AsyncConnection, cursor: Cursor, n: int, run_key: str) -> Chunk:
    found = (
        await conn.execute(
            ENTRIES_CHUNK,
            {
                "account": cursor.account_id,
                "version": cursor.version,
                "dp": cursor.debits_pending,
                "dpo": cursor.debits_posted,
                "cp": cursor.credits_pending,
                "cpo": cursor.credits_posted,
                "n": n,
                "run_key": run_key,
            },
        )
    ).all()
    rows = sum(row.n for row in found)
    done = rows < n
    chunk = Chunk(cursor, rows)
    broken = [row for row in found if row.broken_at is not None]
    if broken:
        chunk.problems.append(
            f"account {broken[0].account_id}: entry chain broken at version {broken[0].broken_at}"
        )

    # the accounts whose entries end in this chunk: all but the last one, which may go on
    # (all of them in the last chunk); and the cursor's account when its entries ended with
    # the previous chunk
    ended = found if done else found[:-1]
    ends = [
        (
            r.account_id,
            r.version,
            r.debits_pending,
            r.debits_posted,
            r.credits_pending,
            r.credits_posted,
        )
        for r in ended
    ]
    if cursor.account_id and (not found or found[0].account_id != cursor.account_id):
        ends.insert(
            0,
            (
                cursor.account_id,
                cursor.version,
                cursor.debits_pending,
                cursor.debits_posted,
                cursor.credits_pending,
                cursor.credits_posted,
            ),
        )
    params: dict[str, Any] = {
        name: [end[i] for end in ends]
        for i, name in enumerate(("ids", "versions", "dps", "dpos", "cps", "cpos"))
    }
    params["low"] = cursor.account_id
    if done:
        checked = (await conn.execute(ACCOUNTS_REST, params)).one()
    else:
        checked = (
            await conn.execute(ACCOUNTS_RANGE, {**params, "high": found[-1].account_id})
        ).one()
    if checked.id is not None:
        chunk.problems.append(_account_problem(checked))
    # the entry at the start cut's version against the state the cut recorded: an account
    # row changed behind the ledger's back before the run started shows here first
    moved = [row for row in found if row.off_cut is not None]
    if moved:
        chunk.problems.append(
            f"account {moved[0].account_id}: its balances when the verification started"
            f" differ from its entry {moved[0].off_cut}"
        )
    accounts = cursor.accounts + checked.accounts
    if done:
        chunk.cursor = replace(
            cursor, phase="transfers", entries=cursor.entries + rows, accounts=accounts
        )
        return chunk
    last = found[-1]
    chunk.cursor = replace(
        cursor,
        account_id=last.account_id,
        version=last.version,
        debits_pending=last.debits_pending,
        debits_posted=last.debits_posted,
        credits_pending=last.credits_pending,
        credits_posted=last.credits_posted,
        entries=cursor.entries + rows,
        accounts=accounts,
    )
    return chunk


async def _transfers_chunk(conn: AsyncConnection, cursor: Cursor, n: int) -> Chunk:
    bound = (await conn.execute(TRANSFERS_BOUND, {"after": cursor.transfer_id, "n": n})).one()
    rows = int(bound.n)
    done = rows < n
    if done:
        row = (await conn.execute(TRANSFERS_REST, {"after": cursor.transfer_id})).first()
    else:
        row = (
            await conn.execute(TRANSFERS_RANGE, {"after": cursor.transfer_id, "high": bound.last})
        ).first()
    chunk = Chunk(
        replace(
            cursor,
            phase="done" if done else "transfers",
            transfer_id=cursor.transfer_id if done else bound.last,
            transfers=cursor.transfers + rows,
        ),
        rows,
    )
    if row is not None:
        if row.missing:
            chunk.problems.append(
                f"transfer {row.transfer_id}: entries of a transfer that is missing"
            )
        elif row.misplaced and row.n == 2:
            chunk.problems.append(
                f"transfer {row.transfer_id}: an entry is not on its leg's account"
            )
        else:
            chunk.problems.append(
                f"transfer {row.transfer_id}: {row.n} entries, debits {row.debits} vs credits "
                f"{row.credits}"
            )
    return chunk


async def verify_totals(engine: AsyncEngine) -> tuple[list[str], dict[str, list[int]]]:
    """The last check, in one snapshot: per currency the balances sum to zero; returns the
    problem (if any) and the per-currency totals a checkpoint records."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            await conn.execute(text("SET TRANSACTION READ ONLY"))
            row = (await conn.execute(ZERO_SUM)).first()
            found = await totals(conn)
    if row is None:
        return [], found
    return [
        f"currency {row[0]}: balances do not sum to zero "
        f"(posted off by {row[1]}, pending off by {row[2]})"
    ], found
