"""`payments ledger verify` / `payments audit verify` and the hourly check: verify from the
last checkpoint (or everything, `full`), and write a new checkpoint when it passes.

Incremental runs cost what was written since the last checkpoint (ledger/incremental.py,
kernel/audit.verify_after); with no checkpoint yet, the first run is a full one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from kernel import audit, checkpoints
from ledger import verify_ledger
from ledger.incremental import AccountState, record_verified_states, verify_since_checkpoint


@dataclass
class Verification:
    """The outcome of one run: its mode, what it read, its problems, and the checkpoint it
    wrote (None when it failed)."""

    mode: checkpoints.Mode
    checked: str
    # the ledger entries or audit records it read
    rows: int
    problems: list[str] = field(default_factory=list)
    checkpoint_id: int | None = None

    @property
    def ok(self) -> bool:
        """True when nothing was found wrong."""
        return not self.problems


async def verify_audit_trail(engine: AsyncEngine, *, full: bool, actor: str) -> Verification:
    """Recompute every audit chain after the last checkpoint's anchors (or from its start);
    the checkpoint it writes anchors every chain's head into the platform chain."""
    async with engine.connect() as conn:
        last = None if full else await checkpoints.latest(conn, "audit")
    if last is None or last.audit_seq is None or last.audit_hash is None:
        mode: checkpoints.Mode = "full"
        report = await audit.verify(engine)
    else:
        mode = "incremental"
        # a checkpoint from before the chains were split anchors the platform chain only
        heads = last.audit_heads or {audit.PLATFORM_KEY: [last.audit_seq, last.audit_hash]}
        report = await audit.verify_chains(engine, heads)
    outcome = Verification(
        mode,
        f"{report.entries} entries up to entry {report.head_seq}"
        + (f" and {len(report.heads) - 1} tenant chains" if len(report.heads) > 1 else ""),
        report.entries,
        report.problems,
    )
    if report.ok:
        async with engine.begin() as conn:
            outcome.checkpoint_id = await checkpoints.record(
                conn,
                kind="audit",
                mode=mode,
                checked_rows=report.entries,
                actor=actor,
                audit_seq=report.head_seq,
                audit_hash=report.head_hash,
                audit_heads=report.heads,
            )
    return outcome


async def verify_books(engine: AsyncEngine, *, full: bool, actor: str) -> Verification:
    """Check the ledger written since the last checkpoint (or all of it)."""
    async with engine.connect() as conn:
        last = None if full else await checkpoints.latest(conn, "ledger")
    states: list[AccountState]
    if last is None:
        mode: checkpoints.Mode = "full"
        whole = await verify_ledger(engine, with_states=True)
        checked = f"{whole.accounts} accounts, {whole.entries} entries, {whole.transfers} transfers"
        problems, states, totals, rows = whole.problems, whole.states, whole.totals, whole.entries
    else:
        mode = "incremental"
        since = await verify_since_checkpoint(engine)
        checked = (
            f"{since.accounts_changed} changed accounts, {since.entries} new entries, "
            f"{since.transfers} transfers since checkpoint {last.id}"
        )
        problems, states, totals, rows = since.problems, since.states, since.totals, since.entries
    outcome = Verification(mode, checked, rows, problems)
    if outcome.ok:
        async with engine.begin() as conn:

            async def with_id(checkpoint_id: int) -> None:
                await record_verified_states(conn, states, checkpoint_id)

            outcome.checkpoint_id = await checkpoints.record(
                conn,
                kind="ledger",
                mode=mode,
                checked_rows=rows,
                actor=actor,
                ledger_totals=totals,
                with_id=with_id,
            )
    return outcome
