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

from sqlalchemy import Select, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kernel.tables import audit_log

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
    """Entries checked and the first break in the chain, if any."""

    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every hash recomputes and links to its predecessor."""
        return not self.problems


async def verify(engine: AsyncEngine) -> AuditReport:
    """Recompute the whole chain in order; report the first entry that does not match."""
    report = AuditReport()
    prev = GENESIS
    async with engine.connect() as conn:
        report.entries = (
            await conn.execute(select(func.count()).select_from(audit_log))
        ).scalar_one()
        result = await conn.stream(select(audit_log).order_by(audit_log.c.seq))
        expected_seq = 1
        async for row in result:
            if row.seq != expected_seq:
                report.problems.append(f"entry {expected_seq} is missing (found {row.seq})")
                break
            if row.prev_hash != prev:
                report.problems.append(f"entry {row.seq} does not link to entry {row.seq - 1}")
                break
            if row.hash != entry_hash(prev, _entry(row)):
                report.problems.append(f"entry {row.seq} ({row.action}) was altered")
                break
            prev = row.hash
            expected_seq += 1
    return report
