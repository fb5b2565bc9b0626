"""Archive old months of the ledger and the audit log: `payments archive ledger|audit|verify`.

A month is archived whole, oldest first, once a verification has checked it: its rows are
written to gzip'd JSON-lines files (one per table) beside a manifest (row counts, sha256 of
each file, the chain anchors at the month's end), its partitions are detached and dropped,
and the archive is recorded in `archived_partitions` and appended to the audit chain, in one
transaction with the detach. What the database keeps is what verification and new writes
continue from:

- ledger: each account's version and balances after its last archived entry
  (`ledger_archived_accounts`). Balances live in `ledger_accounts` and never depend on
  entries; an account's next entry continues its chain from this anchor; the full
  `ledger verify` recomputes each account from its anchor plus its live entries. A month is
  archived only when every hold in it is resolved (a post or void must find its hold) and
  both legs of every transfer are in it (they are written in one statement).
- audit: the month's first and last sequence numbers of the platform chain, the hash its
  first record links to, and its last record's hash; under "chains", every tenant chain's
  last archived sequence number and hash (carried from month to month, so the newest
  archive holds every chain's). Each live chain must continue from its hash; the full
  `audit verify` starts there.

`payments archive verify DIR` reads the files back: every file's checksum and row count
against its manifest and the database's record of it, the audit chain recomputed across
the archived files from its genesis to the live chain, and the ledger's per-account chains
recomputed across the archived files up to the anchors the database holds.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kernel import audit, checkpoints
from kernel.tables import archived_partitions, audit_log
from ledger.tables import ledger_archived_accounts
from services.partitions import add_months, live_partitions, partition_name

FORMAT = "payments-archive/1"
BALANCES = ("debits_pending", "debits_posted", "credits_pending", "credits_posted")
# an archived month ends at least this long before the checkpoint that verified it: a
# transaction that began in the month (its rows carry its start time) has long committed
SETTLE = timedelta(days=1)
# rows per batch when recording anchors
CHUNK = 5_000

Anchor = tuple[int, int, int, int, int]  # version and the four balances


class ArchiveRefusedError(Exception):
    """The month cannot be archived (yet): the message says why and what to do."""


@dataclass
class ArchivedFile:
    """One file of an archive: its name, rows and checksum."""

    name: str
    rows: int
    sha256: str
    bytes: int


@dataclass
class ArchiveResult:
    """What `archive_ledger_month` / `archive_audit_month` wrote."""

    month: date
    manifest: Path
    files: list[ArchivedFile] = field(default_factory=list)
    anchors: dict[str, Any] = field(default_factory=dict)


def _stem(table: str, month: date) -> str:
    return f"{table}-{month:%Y-%m}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


async def _rows(conn: AsyncConnection, partition: str, order: str) -> AsyncIterator[Any]:
    """The partition's rows as JSON objects, in `order` (streamed: a month can be large)."""
    result = await conn.stream(
        text(f"SELECT row_to_json(t)::text FROM {partition} t ORDER BY {order}")  # noqa: S608
    )
    async for (line,) in result:
        yield json.loads(line)


class _Writer:
    """A gzip'd JSON-lines file written under a temporary name, renamed when complete."""

    def __init__(self, directory: Path, name: str) -> None:
        self.path = directory / name
        self._partial = directory / f".{name}.partial"
        self._handle = gzip.open(self._partial, "wt", encoding="utf-8")  # noqa: SIM115
        self.rows = 0

    def write(self, row: dict[str, Any]) -> None:
        self._handle.write(json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n")
        self.rows += 1

    def close(self) -> ArchivedFile:
        self._handle.close()
        with self._partial.open("rb") as handle:
            os.fsync(handle.fileno())
        self._partial.rename(self.path)
        return ArchivedFile(self.path.name, self.rows, _sha256(self.path), self.path.stat().st_size)


def _write_manifest(directory: Path, table: str, month: date, body: dict[str, Any]) -> Path:
    path = directory / f"{_stem(table, month)}.manifest.json"
    path.write_text(json.dumps({"format": FORMAT, **body}, indent=2, sort_keys=True) + "\n")
    return path


async def _refuse_unless_oldest(
    conn: AsyncConnection, tables: tuple[str, ...], month: date
) -> None:
    for table in tables:
        live = await live_partitions(conn, table)
        months = [p.month for p in live]
        if month not in months:
            raise ArchiveRefusedError(f"{table} has no partition for {month:%Y-%m}")
        if months[0] != month:
            raise ArchiveRefusedError(
                f"{table}: archive {months[0]:%Y-%m} first (months are archived oldest first)"
            )


async def _refuse_unless_verified(
    conn: AsyncConnection, kind: checkpoints.Kind, month: date, settle: timedelta
) -> checkpoints.Checkpoint:
    last = await checkpoints.latest(conn, kind)
    end = datetime(*add_months(month, 1).timetuple()[:3], tzinfo=UTC)
    created = None
    if last is not None:
        created = (
            await conn.execute(
                text("SELECT created_at FROM verification_checkpoints WHERE id = :id"),
                {"id": last.id},
            )
        ).scalar_one()
    if last is None or created is None or created < end + settle:
        raise ArchiveRefusedError(
            f"no {kind} verification has passed since {(end + settle):%Y-%m-%d %H:%M} UTC: "
            f"run `payments {kind} verify` first (only verified months are archived)"
        )
    return last


async def _detach(conn: AsyncConnection, table: str, partition: str) -> None:
    # detaching locks the table: give up rather than queue every writer behind it for long
    await conn.execute(text("SET LOCAL lock_timeout = '10s'"))
    await conn.execute(text(f"ALTER TABLE {table} DETACH PARTITION {partition}"))
    await conn.execute(text(f"DROP TABLE {partition}"))


async def _record(
    conn: AsyncConnection, table: str, month: date, written: ArchivedFile, anchors: dict[str, Any]
) -> None:
    await conn.execute(
        insert(archived_partitions).values(
            partition_name=partition_name(table, month),
            table_name=table,
            month=month,
            file_name=written.name,
            sha256=written.sha256,
            row_count=written.rows,
            anchors=anchors,
        )
    )


def _audit_the_archive(conn: AsyncConnection, result: ArchiveResult, what: str) -> Any:
    return audit.append_in(
        conn,
        actor="ops-cli",
        action=f"archive.{what}",
        subject=f"{what}:{result.month:%Y-%m}",
        detail={
            "manifest": result.manifest.name,
            "files": [f.__dict__ for f in result.files],
            "anchors_sha256": hashlib.sha256(
                json.dumps(result.anchors, sort_keys=True).encode()
            ).hexdigest(),
        },
        idempotency_key=f"archive:{what}:{result.month:%Y-%m}",
    )


# --- ledger -------------------------------------------------------------------------------

# holds of the month that no post, void or expiry resolved (by the ids' unique pending_id)
_UNRESOLVED = """
    SELECT t.id FROM {transfers} t
     WHERE t.kind = 'pending'
       AND NOT EXISTS (SELECT FROM ledger_transfer_ids r WHERE r.pending_id = t.id)
     LIMIT 1
"""
# transfers of the month whose two legs are not both in the month's entries
_SPLIT = """
    SELECT t.id FROM {transfers} t
      LEFT JOIN (SELECT transfer_id, count(*) AS n,
                        sum(debits_pending_delta + debits_posted_delta) AS debits,
                        sum(credits_pending_delta + credits_posted_delta) AS credits
                   FROM {entries} GROUP BY transfer_id) s ON s.transfer_id = t.id
     WHERE s.n IS DISTINCT FROM 2 OR s.debits IS DISTINCT FROM s.credits
    UNION ALL
    SELECT e.transfer_id FROM {entries} e
     WHERE NOT EXISTS (SELECT FROM {transfers} t WHERE t.id = e.transfer_id)
     LIMIT 1
"""
# after the detach: an account whose first live entry does not continue its new anchor
_DISCONTINUOUS = text("""
    SELECT z.account_id FROM ledger_archived_accounts z
     CROSS JOIN LATERAL (
         SELECT e.version FROM ledger_entries e WHERE e.account_id = z.account_id
          ORDER BY e.version LIMIT 1) e
     WHERE z.month = :month AND e.version <> z.version + 1
     LIMIT 1
""")
# per currency, the anchors' balances sum to zero (both legs of a transfer are archived
# together, so the archived part of the ledger balances on its own)
_ANCHOR_TOTALS = text("""
    SELECT a.currency, sum(z.debits_pending), sum(z.debits_posted), sum(z.credits_pending),
           sum(z.credits_posted)
      FROM ledger_archived_accounts z JOIN ledger_accounts a ON a.id = z.account_id
     GROUP BY a.currency ORDER BY a.currency
""")


async def _anchors(conn: AsyncConnection) -> dict[str, Anchor]:
    rows = await conn.execute(
        text(
            "SELECT account_id, version, debits_pending, debits_posted, credits_pending,"
            " credits_posted FROM ledger_archived_accounts"
        )
    )
    return {row[0]: (row[1], row[2], row[3], row[4], row[5]) for row in rows}


def continue_chain(previous: Anchor | None, entry: dict[str, Any]) -> Anchor | None:
    """The account's state after `entry` if it continues `previous` (None: it does not)."""
    version, *balances = previous or (0, 0, 0, 0, 0)
    if entry["version"] != version + 1:
        return None
    after = tuple(b + entry[f"{name}_delta"] for b, name in zip(balances, BALANCES, strict=True))
    if after != tuple(entry[name] for name in BALANCES):
        return None
    return (entry["version"], *after)  # type: ignore[return-value]


async def archive_ledger_month(
    engine: AsyncEngine, month: date, directory: Path, *, settle: timedelta = SETTLE
) -> ArchiveResult:
    """Write the month's transfers and entries to `directory`, record the anchors, detach
    and drop the month's partitions (raises ArchiveRefusedError when it may not)."""
    transfers = partition_name("ledger_transfers", month)
    entries = partition_name("ledger_entries", month)
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (an ops command's only task)
    result = ArchiveResult(month, directory / f"{_stem('ledger', month)}.manifest.json")
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            await _refuse_unless_oldest(conn, ("ledger_transfers", "ledger_entries"), month)
            await _refuse_unless_verified(conn, "ledger", month, settle)
            found = (
                await conn.execute(text(_UNRESOLVED.format(transfers=transfers)))
            ).scalar_one_or_none()
            if found is not None:
                raise ArchiveRefusedError(f"hold {found} of {month:%Y-%m} is not resolved yet")
            found = (
                await conn.execute(text(_SPLIT.format(transfers=transfers, entries=entries)))
            ).scalar_one_or_none()
            if found is not None:
                raise ArchiveRefusedError(
                    f"transfer {found}: its two legs are not both in the month"
                )
            writer = _Writer(directory, f"{_stem('ledger_transfers', month)}.jsonl.gz")
            async for row in _rows(conn, transfers, "id"):
                writer.write(row)
            result.files.append(writer.close())
            anchors = await _anchors(conn)
            moved: dict[str, Anchor] = {}
            writer = _Writer(directory, f"{_stem('ledger_entries', month)}.jsonl.gz")
            async for row in _rows(conn, entries, "account_id, version"):
                account = row["account_id"]
                state = continue_chain(moved.get(account, anchors.get(account)), row)
                if state is None:
                    raise ArchiveRefusedError(
                        f"account {account}: entry {row['version']} does not continue its chain"
                    )
                moved[account] = state
                writer.write(row)
            result.files.append(writer.close())
    async with engine.begin() as conn:
        for start in range(0, len(moved), CHUNK):
            batch = [
                {
                    "account_id": account,
                    "version": state[0],
                    **dict(zip(BALANCES, state[1:], strict=True)),
                    "month": month,
                }
                for account, state in list(moved.items())[start : start + CHUNK]
            ]
            statement = insert(ledger_archived_accounts).values(batch)
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["account_id"],
                    set_={
                        name: statement.excluded[name] for name in ("version", *BALANCES, "month")
                    },
                )
            )
        totals = {row[0]: [int(v) for v in row[1:]] for row in await conn.execute(_ANCHOR_TOTALS)}
        unbalanced = [c for c, t in totals.items() if t[0] != t[2] or t[1] != t[3]]
        if unbalanced:
            raise ArchiveRefusedError(f"archived {unbalanced[0]} movements do not sum to zero")
        result.anchors = {
            "accounts": len(moved),
            "states": {a: list(s) for a, s in sorted(moved.items())},
            "totals_at_boundary": totals,
        }
        summary = {"accounts": len(moved), "totals_at_boundary": totals}
        await _record(conn, "ledger_transfers", month, result.files[0], summary)
        await _record(conn, "ledger_entries", month, result.files[1], summary)
        await _detach(conn, "ledger_transfers", transfers)
        await _detach(conn, "ledger_entries", entries)
        found = (await conn.execute(_DISCONTINUOUS, {"month": month})).scalar_one_or_none()
        if found is not None:
            raise ArchiveRefusedError(
                f"account {found}: a later month's entry does not continue the archived ones"
            )
        _write_manifest(
            directory,
            "ledger",
            month,
            {
                "tables": ["ledger_transfers", "ledger_entries"],
                "month": f"{month:%Y-%m}",
                "files": [f.__dict__ for f in result.files],
                "anchors": result.anchors,
            },
        )
        await _audit_the_archive(conn, result, "ledger")
    return result


# --- audit --------------------------------------------------------------------------------


def recompute(prev_hash: str, row: dict[str, Any]) -> str:
    """The hash a record of the chain must carry, from its archived JSON."""
    at = datetime.fromisoformat(row["at"])
    return audit.entry_hash(prev_hash, audit.entry_of(SimpleNamespace(**{**row, "at": at})))


async def archive_audit_month(
    engine: AsyncEngine, month: date, directory: Path, *, settle: timedelta = SETTLE
) -> ArchiveResult:
    """Write the month's audit records to `directory` (checking that each chain's records
    chain), detach and drop its partition; each live chain must continue from its last
    hash."""
    partition = partition_name("audit_log", month)
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (an ops command's only task)
    result = ArchiveResult(month, directory / f"{_stem('audit_log', month)}.manifest.json")
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            await _refuse_unless_oldest(conn, ("audit_log",), month)
            last = await _refuse_unless_verified(conn, "audit", month, settle)
            # every chain's head so far: its last archived record (carried month to month)
            heads = await audit.archive_anchors(conn)
            seq, prev = heads.get(audit.PLATFORM_KEY, (0, audit.GENESIS))
            first = {"first_seq": seq + 1, "prev_hash": prev}
            touched: set[str] = set()
            writer = _Writer(directory, f"{_stem('audit_log', month)}.jsonl.gz")
            async for row in _rows(conn, partition, "chain, seq"):
                key = audit.chain_key(row.get("chain") or None)
                seq, prev = heads.get(key, (0, audit.GENESIS))
                name = _record_name(row)
                if row["seq"] != seq + 1 or row["prev_hash"] != prev:
                    raise ArchiveRefusedError(f"{name} does not continue")
                if recompute(prev, row) != row["hash"]:
                    raise ArchiveRefusedError(f"{name} was altered")
                heads[key] = (row["seq"], row["hash"])
                touched.add(key)
                writer.write(row)
            verified = last.audit_heads or {audit.PLATFORM_KEY: [last.audit_seq, None]}
            for key in sorted(touched):
                # the platform chain's checkpoint is a record after the month's: strictly
                # later; a tenant's chain may have ended in the month, its head verified
                checked = verified.get(key, [None])[0]
                month_last = heads[key][0]
                if checked is None or checked < month_last or (not key and checked == month_last):
                    raise ArchiveRefusedError(
                        "the last audit checkpoint is inside the month: run `payments audit verify`"
                    )
            result.files.append(writer.close())
    seq, prev = heads.get(audit.PLATFORM_KEY, (0, audit.GENESIS))
    chains = {
        key: {"last_seq": s, "last_hash": h}
        for key, (s, h) in sorted(heads.items())
        if key != audit.PLATFORM_KEY
    }
    result.anchors = {**first, "last_seq": seq, "last_hash": prev}
    if chains:
        result.anchors["chains"] = chains
    async with engine.begin() as conn:
        await _record(conn, "audit_log", month, result.files[0], result.anchors)
        await _detach(conn, "audit_log", partition)
        for key in sorted(touched | {audit.PLATFORM_KEY}):
            chain = audit.key_chain(key)
            following = (
                await conn.execute(
                    select(audit_log.c.seq, audit_log.c.prev_hash)
                    .where(audit.in_chain(chain))
                    .order_by(audit_log.c.seq)
                    .limit(1)
                )
            ).first()
            last_seq, last_hash = heads.get(key, (0, audit.GENESIS))
            if following is not None and (following.seq, following.prev_hash) != (
                last_seq + 1,
                last_hash,
            ):
                raise ArchiveRefusedError(
                    f"{audit.record_name(chain, following.seq)} of a later month does not "
                    "continue the archive"
                )
        _write_manifest(
            directory,
            "audit_log",
            month,
            {
                "tables": ["audit_log"],
                "month": f"{month:%Y-%m}",
                "files": [f.__dict__ for f in result.files],
                "anchors": result.anchors,
            },
        )
        await _audit_the_archive(conn, result, "audit")
    return result


def _record_name(record: dict[str, Any]) -> str:
    """How a problem names an archived audit record."""
    name = audit.record_name(record.get("chain") or None, record["seq"])
    return f"audit record {name.removeprefix('entry ')}"


# --- reading an archive back --------------------------------------------------------------


def _read(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


async def verify_archive(engine: AsyncEngine, directory: Path) -> list[str]:
    """Check every archived month in `directory` against its manifest and the database, and
    recompute the chains across the files (see the module's docstring); the problems."""
    problems: list[str] = []
    async with engine.connect() as conn:
        recorded = {
            row.file_name: row
            for row in await conn.execute(
                select(archived_partitions).order_by(archived_partitions.c.month)
            )
        }
        anchors = await _anchors(conn)
        live = await audit.archive_anchors(conn)
    seen: set[str] = set()
    # each audit chain's last archived record read so far
    chains: dict[str, tuple[int, str]] = {}
    states: dict[str, Anchor] = {}
    # (an ops command: blocking file reads stall nothing else)
    for manifest_path in sorted(directory.glob("*.manifest.json")):  # noqa: ASYNC240
        manifest = json.loads(manifest_path.read_text())
        for described in manifest["files"]:
            path = directory / described["name"]
            row = recorded.get(described["name"])
            if not path.exists():
                problems.append(f"{described['name']}: missing")
                continue
            if row is None:
                problems.append(f"{described['name']}: the database has no record of it")
                continue
            seen.add(described["name"])
            digest = _sha256(path)
            if digest != described["sha256"] or digest != row.sha256:
                problems.append(f"{described['name']}: checksum differs from its manifest's")
                continue
            count = 0
            for record in _read(path):
                count += 1
                if row.table_name == "audit_log":
                    key = audit.chain_key(record.get("chain") or None)
                    prev_seq, prev_hash = chains.get(key, (0, audit.GENESIS))
                    if record["seq"] != prev_seq + 1 or record["prev_hash"] != prev_hash:
                        problems.append(f"{_record_name(record)}: the chain breaks")
                        break
                    if recompute(prev_hash, record) != record["hash"]:
                        problems.append(f"{_record_name(record)} was altered")
                        break
                    chains[key] = (record["seq"], record["hash"])
                elif row.table_name == "ledger_entries":
                    account = record["account_id"]
                    state = continue_chain(states.get(account), record)
                    if state is None:
                        problems.append(f"account {account}: archived entry {record['version']}")
                        break
                    states[account] = state
            if count != described["rows"] or count != row.row_count:
                problems.append(f"{described['name']}: {count} rows, recorded {row.row_count}")
    for name in recorded:
        if name not in seen:
            problems.append(f"{name}: recorded as archived but not in {directory}")
    for key in sorted({audit.PLATFORM_KEY, *chains, *live}):
        read_seq, read_hash = chains.get(key, (0, audit.GENESIS))
        live_seq, live_hash = live.get(key, (0, audit.GENESIS))
        if (read_seq, read_hash) != (live_seq, live_hash):
            which = "audit chain" if not key else f"audit chain of tenant {key}"
            problems.append(
                f"the archived {which} ends at record {read_seq}, the database continues "
                f"from record {live_seq}"
            )
    if states != anchors:
        differing = sorted(set(states.items()) ^ set(anchors.items()))
        problems.append(
            f"account {differing[0][0]}: the archived entries end elsewhere than its anchor"
        )
    return problems
