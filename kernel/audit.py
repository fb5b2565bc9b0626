"""The audit trail: every decision appended to a hash-chained log that a command verifies.

Each entry's hash covers the previous entry's hash and the entry itself (canonical JSON), so
changing, removing or reordering any entry breaks every hash after it. The database refuses
UPDATE and DELETE; `payments audit verify` recomputes the chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kernel.tables import archived_partitions, audit_log

GENESIS = "0" * 64
# one appender at a time extends the chain (a transaction-scoped advisory lock)
_CHAIN_LOCK = 7_406_392_121


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    """sha256 over the previous hash and the entry's canonical JSON."""
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}|{canonical}".encode()).hexdigest()


def _entry(row: Any) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "at": row.at.astimezone(UTC).isoformat(),
        "tenant_id": row.tenant_id,
        "actor": row.actor,
        "action": row.action,
        "subject": row.subject,
        "detail": row.detail,
    }


def entry_of(row: Any) -> dict[str, Any]:
    """What a record's hash covers, from a row of the log (or of an archived month)."""
    return _entry(row)


async def append(
    engine: AsyncEngine,
    *,
    actor: str,
    action: str,
    subject: str | None,
    detail: dict[str, Any] | None = None,
    tenant_id: str | None = None,
    idempotency_key: str | None = None,
) -> None:
    """Append one decision in a transaction of its own (see `append_in`)."""
    async with engine.begin() as conn:
        await append_in(
            conn,
            actor=actor,
            action=action,
            subject=subject,
            detail=detail,
            tenant_id=tenant_id,
            idempotency_key=idempotency_key,
        )


# The chain's reads on every append (tests/integration/test_query_plans.py checks their plans):
# the newest link, and whether an idempotency key was recorded already.
LAST_LINK = select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)


def recorded_query(idempotency_key: str) -> Select[Any]:
    """The sequence number of the record appended under `idempotency_key`, if any."""
    return select(audit_log.c.seq).where(audit_log.c.idempotency_key == idempotency_key)


async def append_in(
    conn: AsyncConnection,
    *,
    actor: str,
    action: str,
    subject: str | None,
    detail: dict[str, Any] | None = None,
    tenant_id: str | None = None,
    idempotency_key: str | None = None,
) -> None:
    """Append one decision inside the caller's transaction, so that it commits (or not)
    with what it records; a repeated idempotency key appends nothing.

    The chain's lock is held until that transaction ends: call this last, just before
    committing, never before a slow step.
    """
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    if idempotency_key is not None:
        seen = (await conn.execute(recorded_query(idempotency_key))).first()
        if seen is not None:
            return
    last = (await conn.execute(LAST_LINK)).first()
    seq, prev = (last.seq + 1, last.hash) if last else (1, GENESIS)
    at = datetime.now(UTC)
    entry = {
        "seq": seq,
        "at": at.isoformat(),
        "tenant_id": tenant_id,
        "actor": actor,
        "action": action,
        "subject": subject,
        "detail": json.loads(json.dumps(detail or {}, default=str)),
    }
    await conn.execute(
        insert(audit_log).values(
            seq=seq,
            at=at,
            tenant_id=tenant_id,
            actor=actor,
            action=action,
            subject=subject,
            detail=entry["detail"],
            idempotency_key=idempotency_key,
            prev_hash=prev,
            hash=entry_hash(prev, entry),
        )
    )


@dataclass
class AuditReport:
    """Entries checked, the head they lead to, and the first break in the chain, if any."""

    entries: int = 0
    problems: list[str] = field(default_factory=list)
    # the newest link verified (the anchor itself when nothing was appended after it)
    head_seq: int = 0
    head_hash: str = GENESIS

    @property
    def ok(self) -> bool:
        """True when every hash recomputes and links to its predecessor."""
        return not self.problems


def records_after_query(seq: int) -> Select[Any]:
    """The chain's records after `seq`, in order (a range of the primary key)."""
    return select(audit_log).where(audit_log.c.seq > seq).order_by(audit_log.c.seq)


def records_chunk_query(seq: int, limit: int) -> Select[Any]:
    """The next `limit` records after `seq` (a bounded range of the primary key)."""
    return records_after_query(seq).limit(limit)


def link_query(seq: int) -> Select[Any]:
    """The hash of record `seq`."""
    return select(audit_log.c.hash).where(audit_log.c.seq == seq)


def follow(report: AuditReport, row: Any) -> bool:
    """Check that `row` extends the chain at the report's head and advance the head to it;
    False (with the problem recorded) when it does not."""
    report.entries += 1
    expected_seq = report.head_seq + 1
    if row.seq != expected_seq:
        report.problems.append(f"entry {expected_seq} is missing (found {row.seq})")
        return False
    if row.prev_hash != report.head_hash:
        report.problems.append(f"entry {row.seq} does not link to entry {row.seq - 1}")
        return False
    if row.hash != entry_hash(report.head_hash, _entry(row)):
        report.problems.append(f"entry {row.seq} ({row.action}) was altered")
        return False
    report.head_seq, report.head_hash = row.seq, row.hash
    return True


async def verify_chunk(
    engine: AsyncEngine, seq: int, hash_: str, limit: int
) -> tuple[AuditReport, bool]:
    """One chunk of a full verification: the next `limit` records after record `seq`, which
    the previous chunk verified with hash `hash_` (0 and GENESIS: the start). Returns the
    report (its head is where the next chunk starts) and whether the chain ended here."""
    report = AuditReport(head_seq=seq, head_hash=hash_)
    async with engine.connect() as conn:
        rows = (await conn.execute(records_chunk_query(seq, limit))).all()
    for row in rows:
        if not follow(report, row):
            break
    return report, len(rows) < limit


# The newest archived month of the chain (services/archive.py): its last record's sequence
# number and hash are where the records still in the database continue from.
ARCHIVE_ANCHOR = (
    select(archived_partitions.c.anchors)
    .where(archived_partitions.c.table_name == "audit_log")
    .order_by(archived_partitions.c.month.desc())
    .limit(1)
)


async def archive_anchor(conn: AsyncConnection) -> tuple[int, str]:
    """(sequence number, hash) of the last archived record; (0, GENESIS) when none is."""
    anchors = (await conn.execute(ARCHIVE_ANCHOR)).scalar_one_or_none()
    if anchors is None:
        return 0, GENESIS
    return int(anchors["last_seq"]), str(anchors["last_hash"])


async def verify(engine: AsyncEngine) -> AuditReport:
    """Recompute the whole chain in order; report the first entry that does not match.

    Archived months are not in the database: the chain is recomputed from the last archived
    record's hash, which the archive's manifest holds and `payments archive verify` checks
    against the archived rows themselves."""
    async with engine.connect() as conn:
        seq, hash_ = await archive_anchor(conn)
    return await verify_after(engine, seq, hash_, anchor_archived=seq > 0)


async def verify_after(
    engine: AsyncEngine, seq: int, hash_: str, *, anchor_archived: bool = False
) -> AuditReport:
    """Recompute the chain from an anchor: record `seq` (0: the start) whose hash was
    `hash_` when a checkpoint verified it. The anchor must still carry that hash (unless it
    was archived: `anchor_archived`), and every later record must link to it; costs the
    records after the anchor only."""
    report = AuditReport(head_seq=seq, head_hash=hash_)
    async with engine.connect() as conn:
        if seq > 0 and not anchor_archived:
            found = (await conn.execute(link_query(seq))).scalar_one_or_none()
            if found != hash_:
                report.problems.append(
                    f"entry {seq}, the last checkpoint's anchor, was "
                    f"{'removed' if found is None else 'altered'}"
                )
                return report
        result = await conn.stream(records_after_query(seq))
        async for row in result:
            if not follow(report, row):
                break
    return report
