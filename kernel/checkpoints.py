"""Verification checkpoints: where the next `ledger verify` / `audit verify` starts.

A checkpoint is written only after a run found nothing wrong. It is a row of the
append-only `verification_checkpoints` table and, in the same transaction, a record of the
audit chain (`<kind>.checkpoint`, its content in the detail), so a checkpoint cannot be
slipped in or edited without breaking the chain it anchors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kernel import audit
from kernel.tables import verification_checkpoints

Kind = Literal["ledger", "audit"]
Mode = Literal["full", "incremental"]


@dataclass(frozen=True)
class Checkpoint:
    """A verification that passed: for `audit`, the head of the chain it verified; for
    `ledger`, the per-currency totals it found."""

    id: int
    kind: str
    mode: str
    audit_seq: int | None
    audit_hash: str | None
    # every chain's head (kernel/audit.AuditReport.heads); None before chains were split
    audit_heads: dict[str, list[Any]] | None
    ledger_totals: dict[str, Any] | None
    checked_rows: int


def latest_query(kind: Kind) -> Select[Any]:
    """The newest checkpoint of `kind` (an index read: kind, id DESC)."""
    return (
        select(verification_checkpoints)
        .where(verification_checkpoints.c.kind == kind)
        .order_by(verification_checkpoints.c.id.desc())
        .limit(1)
    )


async def latest(conn: AsyncConnection, kind: Kind) -> Checkpoint | None:
    """The newest checkpoint of `kind`, if any run has passed yet."""
    row = (await conn.execute(latest_query(kind))).first()
    if row is None:
        return None
    return Checkpoint(
        id=row.id,
        kind=row.kind,
        mode=row.mode,
        audit_seq=row.audit_seq,
        audit_hash=row.audit_hash,
        audit_heads=row.audit_heads,
        ledger_totals=row.ledger_totals,
        checked_rows=row.checked_rows,
    )


async def record(
    conn: AsyncConnection,
    *,
    kind: Kind,
    mode: Mode,
    checked_rows: int,
    actor: str,
    audit_seq: int | None = None,
    audit_hash: str | None = None,
    audit_heads: dict[str, list[Any]] | None = None,
    ledger_totals: dict[str, Any] | None = None,
    with_id: Callable[[int], Awaitable[None]] | None = None,
) -> int:
    """Insert a checkpoint and append it to the platform's audit chain, inside the caller's
    transaction (call it last: appending holds the chain's lock until commit). `with_id`
    runs between the two, with the new checkpoint's id (what it verified is written with
    it, before the chain's lock is taken)."""
    checkpoint_id: int = (
        await conn.execute(
            insert(verification_checkpoints)
            .values(
                kind=kind,
                mode=mode,
                audit_seq=audit_seq,
                audit_hash=audit_hash,
                audit_heads=audit_heads,
                ledger_totals=ledger_totals,
                checked_rows=checked_rows,
            )
            .returning(verification_checkpoints.c.id)
        )
    ).scalar_one()
    if with_id is not None:
        await with_id(checkpoint_id)
    await audit.append_in(
        conn,
        actor=actor,
        action=f"{kind}.checkpoint",
        subject=f"checkpoint:{checkpoint_id}",
        detail={
            "checkpoint_id": checkpoint_id,
            "mode": mode,
            "checked_rows": checked_rows,
            "audit_seq": audit_seq,
            "audit_hash": audit_hash,
            # the tenants' chains' heads, anchored into the platform chain by this record
            "audit_heads": audit_heads,
            "ledger_totals": ledger_totals,
        },
        idempotency_key=f"checkpoint:{checkpoint_id}",
    )
    return checkpoint_id
