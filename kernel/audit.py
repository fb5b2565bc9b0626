"""The audit trail: every decision appended to a hash-chained log that a command verifies.

Each entry's hash covers the previous entry's hash and the entry itself (canonical JSON), so
changing, removing or reordering any entry breaks every hash after it. The database refuses
UPDATE and DELETE; `payments audit verify` recomputes the chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, literal, null, select, text, true
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kernel.tables import archived_partitions, audit_log, payments

GENESIS = "0" * 64
# One appender at a time extends a chain (a transaction-scoped advisory lock): the platform
# chain under this key, a tenant's under (_TENANT_CHAINS, hashtext(tenant)), so appends of
# different tenants never wait on each other (a hash collision only makes two tenants share
# a lock, never a chain).
_CHAIN_LOCK = 7_406_392_121
_TENANT_CHAINS = 740_639

# A chain: a tenant's id, or None for the platform chain (records of no tenant, checkpoints
# anchoring every chain's head, and every record written before the chains were split).
Chain = str | None
# a chain's key in a map of heads or anchors (JSON keys are strings)
PLATFORM_KEY = ""


def chain_key(chain: Chain) -> str:
    """The key of `chain` in a map of heads ("" for the platform chain)."""
    return PLATFORM_KEY if chain is None else chain


def key_chain(key: str) -> Chain:
    """The chain a key of a map of heads names (see `chain_key`)."""
    return None if key == PLATFORM_KEY else key


def in_chain(chain: Chain) -> Any:
    """The condition selecting `chain`'s records (the column holds its `chain_key`)."""
    return audit_log.c.chain == chain_key(chain)


def entry_hash(prev_hash: str, entry: dict[str, Any]) -> str:
    """sha256 over the previous hash and the entry's canonical JSON."""
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{prev_hash}|{canonical}".encode()).hexdigest()


def _entry(row: Any) -> dict[str, Any]:
    entry = {
        "seq": row.seq,
        "at": row.at.astimezone(UTC).isoformat(),
        "tenant_id": row.tenant_id,
        "actor": row.actor,
        "action": row.action,
        "subject": row.subject,
        "detail": row.detail,
    }
    # a tenant chain's record covers its chain; the platform's (and every record written
    # before chains were split, archived ones included) covers none, so they keep their hash
    chain = getattr(row, "chain", None)
    if chain:
        entry["chain"] = chain
    return entry


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
def last_link_query(chain: Chain = None, since: datetime | None = None) -> Select[Any]:
    """The newest record of `chain`: its sequence number, hash and time; only among the
    records since `since` when given (the log is partitioned by month: a bound prunes the
    read to the months it covers instead of probing every month)."""
    query = (
        select(audit_log.c.seq, audit_log.c.hash, audit_log.c.at)
        .where(in_chain(chain))
        .order_by(audit_log.c.seq.desc())
        .limit(1)
    )
    return query if since is None else query.where(audit_log.c.at >= since)


def recent_since(now: datetime) -> datetime:
    """The start (UTC) of the month before `now`'s: where a chain's head is looked for
    first."""
    year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return datetime(year, month, 1, tzinfo=UTC)


LAST_LINK = last_link_query(None)

# every tenant chain with a record, one index probe per chain (a skip scan of the
# (chain, seq, at) index rather than a DISTINCT over the whole log)
CHAINS = text("""
    WITH RECURSIVE c(chain) AS (
        (SELECT chain FROM audit_log WHERE chain > '' ORDER BY chain LIMIT 1)
        UNION ALL
        SELECT (SELECT a.chain FROM audit_log a WHERE a.chain > c.chain
                 ORDER BY a.chain LIMIT 1)
          FROM c WHERE c.chain IS NOT NULL
    )
    SELECT chain FROM c WHERE chain IS NOT NULL
""")


async def tenant_chains(conn: AsyncConnection) -> list[str]:
    """The tenants whose chain has a record in the database, in order."""
    return [str(row.chain) for row in await conn.execute(CHAINS)]


async def payment_tenant(engine: AsyncEngine, payment_id: str) -> str | None:
    """The tenant of a payment (None if there is no such payment): the chain that a
    decision about it, recorded by a step that was not told its tenant, extends."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")  # one read, no BEGIN
        found: str | None = (
            await conn.execute(select(payments.c.tenant_id).where(payments.c.id == payment_id))
        ).scalar_one_or_none()
    return found


async def lock_chain(conn: AsyncConnection, chain: Chain) -> None:
    """Take `chain`'s append lock until the transaction ends."""
    if chain is None:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    else:
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:space, hashtext(:chain))"),
            {"space": _TENANT_CHAINS, "chain": chain},
        )


# a record's time is its appender's clock, a bound the database's: a day of slack between them
_CLOCK_SLACK = timedelta(days=1)


def recorded_query(idempotency_key: str, not_before: datetime | None = None) -> Select[Any]:
    """The sequence number of the record appended under `idempotency_key`, if any; only
    among the records from `not_before` on when given (one month's probe, not every
    month's)."""
    query = select(audit_log.c.seq).where(audit_log.c.idempotency_key == idempotency_key)
    if not_before is None:
        return query
    return query.where(audit_log.c.at >= not_before - _CLOCK_SLACK)


def append_reads_query(
    chain: Chain,
    idempotency_key: str | None,
    not_before: datetime | None = None,
    since: datetime | None = None,
) -> Select[Any]:
    """What an append reads once it holds the chain's lock, in one round trip: the record
    already appended under `idempotency_key` (`seen`, None when there is none or no key;
    looked for from `not_before` on) and the chain's newest link since `since` (`seq`,
    `hash` and `at`, None when the chain has none there)."""
    seen = (
        recorded_query(idempotency_key, not_before).limit(1).scalar_subquery()
        if idempotency_key is not None
        else null()
    )
    link = last_link_query(chain, since).subquery("link")
    one = select(literal(1).label("one")).subquery("one")
    return select(seen.label("seen"), link.c.seq, link.c.hash, link.c.at).select_from(
        one.outerjoin(link, true())
    )


async def append_in(
    conn: AsyncConnection,
    *,
    actor: str,
    action: str,
    subject: str | None,
    detail: dict[str, Any] | None = None,
    tenant_id: str | None = None,
    idempotency_key: str | None = None,
    not_before: datetime | None = None,
) -> None:
    """Append one decision inside the caller's transaction, so that it commits (or not)
    with what it records; a repeated idempotency key appends nothing. A tenant's decision
    extends that tenant's chain, any other the platform chain. `not_before`: a time no
    record under this key can be older than (e.g. the creation of the payment the key
    names), which bounds the probe for the key to the months since.

    The chain's lock is held until that transaction ends: call this last, just before
    committing, never before a slow step (and append to one chain per transaction: two
    transactions taking two chains' locks in opposite orders would deadlock).
    """
    chain: Chain = tenant_id
    # the lock in a statement of its own: a statement reads with the snapshot it started
    # with, so a head read in the statement that waited for the lock could be stale
    await lock_chain(conn, chain)
    # a key is always recorded in the same chain (its tenant's), whose lock is held
    # A record is never dated before the one it follows (below), so the chain's head is
    # its newest record of the recent months when it has one there; only a chain idle
    # since before last month is looked for in every month. (Records written before this
    # rule took the appender's clock under the same lock: a head dated more than a month
    # before its predecessor would need a clock that far behind.)
    now = datetime.now(UTC)
    head = (
        await conn.execute(
            append_reads_query(chain, idempotency_key, not_before, recent_since(now))
        )
    ).one()
    if head.seen is not None:
        return
    if head.seq is None:
        head = (await conn.execute(append_reads_query(chain, None, None, None))).one()
    seq, prev = (head.seq + 1, head.hash) if head.seq is not None else (1, GENESIS)
    at = max(now, head.at.astimezone(UTC)) if head.at is not None else now
    entry: dict[str, Any] = {
        "seq": seq,
        "at": at.isoformat(),
        "tenant_id": tenant_id,
        "actor": actor,
        "action": action,
        "subject": subject,
        "detail": json.loads(json.dumps(detail or {}, default=str)),
    }
    if chain is not None:
        entry["chain"] = chain
    await conn.execute(
        insert(audit_log).values(
            seq=seq,
            at=at,
            chain=chain_key(chain),
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
    # the newest link verified (the anchor itself when nothing was appended after it): of
    # the chain verified, or of the platform chain when every chain was
    head_seq: int = 0
    head_hash: str = GENESIS
    chain: Chain = None
    # every chain's head verified, by `chain_key` (what the next run continues from)
    heads: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every hash recomputes and links to its predecessor."""
        return not self.problems


def record_name(chain: Chain, seq: int) -> str:
    """How a problem names record `seq` of `chain`."""
    return f"entry {seq}" if chain is None else f"entry {seq} of tenant {chain}'s chain"


def records_after_query(seq: int, chain: Chain = None) -> Select[Any]:
    """The chain's records after `seq`, in order (a range of the (chain, seq, at) key)."""
    return select(audit_log).where(in_chain(chain), audit_log.c.seq > seq).order_by(audit_log.c.seq)


def records_chunk_query(seq: int, limit: int, chain: Chain = None) -> Select[Any]:
    """The next `limit` records of `chain` after `seq` (a bounded range of the key)."""
    return records_after_query(seq, chain).limit(limit)


def link_query(seq: int, chain: Chain = None) -> Select[Any]:
    """The hash of record `seq` of `chain`."""
    return select(audit_log.c.hash).where(in_chain(chain), audit_log.c.seq == seq)


def follow(report: AuditReport, row: Any) -> bool:
    """Check that `row` extends the report's chain at its head and advance the head to it;
    False (with the problem recorded) when it does not."""
    report.entries += 1
    expected_seq = report.head_seq + 1
    chain = report.chain
    if row.seq != expected_seq:
        report.problems.append(f"{record_name(chain, expected_seq)} is missing (found {row.seq})")
        return False
    if row.prev_hash != report.head_hash:
        report.problems.append(
            f"{record_name(chain, row.seq)} does not link to entry {row.seq - 1}"
        )
        return False
    if key_chain(row.chain) != chain or row.hash != entry_hash(report.head_hash, _entry(row)):
        report.problems.append(f"{record_name(chain, row.seq)} ({row.action}) was altered")
        return False
    report.head_seq, report.head_hash = row.seq, row.hash
    return True


async def verify_chunk(
    engine: AsyncEngine, seq: int, hash_: str, limit: int, chain: Chain = None
) -> tuple[AuditReport, bool]:
    """One chunk of a full verification: the next `limit` records of `chain` after record
    `seq`, which the previous chunk verified with hash `hash_` (0 and GENESIS: the start).
    Returns the report (its head is where the next chunk starts) and whether the chain
    ended here."""
    report = AuditReport(head_seq=seq, head_hash=hash_, chain=chain)
    async with engine.connect() as conn:
        rows = (await conn.execute(records_chunk_query(seq, limit, chain))).all()
    for row in rows:
        if not follow(report, row):
            break
    return report, len(rows) < limit


# The newest archived month of the log (services/archive.py): the last archived record of
# each chain, its sequence number and hash, are where the records still in the database
# continue from (the platform chain's at the top level, the tenants' under "chains", carried
# from month to month).
ARCHIVE_ANCHOR = (
    select(archived_partitions.c.anchors)
    .where(archived_partitions.c.table_name == "audit_log")
    .order_by(archived_partitions.c.month.desc())
    .limit(1)
)


async def archive_anchors(conn: AsyncConnection) -> dict[str, tuple[int, str]]:
    """Every archived chain's (sequence number, hash) of its last archived record, by
    `chain_key`; empty when nothing is archived."""
    anchors = (await conn.execute(ARCHIVE_ANCHOR)).scalar_one_or_none()
    if anchors is None:
        return {}
    found = {PLATFORM_KEY: (int(anchors["last_seq"]), str(anchors["last_hash"]))}
    for key, anchor in (anchors.get("chains") or {}).items():
        found[key] = (int(anchor["last_seq"]), str(anchor["last_hash"]))
    return found


async def archive_anchor(conn: AsyncConnection, chain: Chain = None) -> tuple[int, str]:
    """(sequence number, hash) of `chain`'s last archived record; (0, GENESIS) when none
    is."""
    return (await archive_anchors(conn)).get(chain_key(chain), (0, GENESIS))


async def verify(engine: AsyncEngine) -> AuditReport:
    """Recompute every chain in order; report the first entry of each that does not match.

    Archived months are not in the database: each chain is recomputed from its last
    archived record's hash, which the archive's manifest holds and `payments archive
    verify` checks against the archived rows themselves."""
    return await verify_chains(engine, {})


async def verify_chains(engine: AsyncEngine, heads: dict[str, list[Any]]) -> AuditReport:
    """Recompute every chain after its anchor: its head in `heads` (what a checkpoint
    verified), or its last archived record when that is newer or the chain has no head
    there. The platform chain's head is the report's; every chain's is in its `heads`."""
    async with engine.connect() as conn:
        archived = await archive_anchors(conn)
        present = await tenant_chains(conn)
    keys = sorted({PLATFORM_KEY, *present, *heads, *archived})
    total = AuditReport()
    for key in keys:
        chain = key_chain(key)
        archived_seq, archived_hash = archived.get(key, (0, GENESIS))
        head = heads.get(key)
        if head is not None and int(head[0]) > archived_seq:
            report = await verify_after(engine, int(head[0]), str(head[1]), chain=chain)
        else:
            report = await verify_after(
                engine, archived_seq, archived_hash, anchor_archived=archived_seq > 0, chain=chain
            )
        total.entries += report.entries
        total.problems.extend(report.problems)
        total.heads[key] = [report.head_seq, report.head_hash]
        if chain is None:
            total.head_seq, total.head_hash = report.head_seq, report.head_hash
    return total


async def verify_after(
    engine: AsyncEngine,
    seq: int,
    hash_: str,
    *,
    anchor_archived: bool = False,
    chain: Chain = None,
) -> AuditReport:
    """Recompute one chain from an anchor: record `seq` (0: the start) whose hash was
    `hash_` when a checkpoint verified it. The anchor must still carry that hash (unless it
    was archived: `anchor_archived`), and every later record must link to it; costs the
    records after the anchor only."""
    report = AuditReport(head_seq=seq, head_hash=hash_, chain=chain)
    report.heads[chain_key(chain)] = [seq, hash_]
    async with engine.connect() as conn:
        if seq > 0 and not anchor_archived:
            found = (await conn.execute(link_query(seq, chain))).scalar_one_or_none()
            if found != hash_:
                report.problems.append(
                    f"{record_name(chain, seq)}, the last checkpoint's anchor, was "
                    f"{'removed' if found is None else 'altered'}"
                )
                return report
        result = await conn.stream(records_after_query(seq, chain))
        async for row in result:
            if not follow(report, row):
                break
    report.heads[chain_key(chain)] = [report.head_seq, report.head_hash]
    return report
