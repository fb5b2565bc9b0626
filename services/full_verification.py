"""The full verification's steps without Temporal: read chunks from a state, and finish
(issue #23). The FullVerification workflow's activities call these; so do the bench and the
tests that time or exercise the chunks alone.

A state (workflows.models.FullVerifyState) is everything a chunk needs to start: for the
ledger the cursor of ledger/full.py, for the audit chain the last record verified and its
hash. A chunk reads a keyset range after it and returns the next state.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, fields, replace

from sqlalchemy.ext.asyncio import AsyncEngine

from kernel import audit, checkpoints
from ledger import full
from workflows.models.verification import FullVerifyResult, FullVerifyState

OnChunk = Callable[[FullVerifyState], Awaitable[None]]
_CURSOR_FIELDS = [f.name for f in fields(full.Cursor)]


async def _start(engine: AsyncEngine, state: FullVerifyState) -> FullVerifyState:
    """The first state of a verification: its phase and how many rows there are to read."""
    if state.kind == "audit":
        # archived months are not in the database: each chain continues from its last
        # archived record (`payments archive verify` checks the archive up to it); the
        # platform chain first, then each tenant's
        async with engine.connect() as conn:
            archived = await audit.archive_anchors(conn)
            keys = sorted({audit.PLATFORM_KEY, *await audit.tenant_chains(conn), *archived})
            total = 0
            for key in keys:
                head = (await conn.execute(audit.last_link_query(audit.key_chain(key)))).first()
                total += max((head.seq if head else 0) - archived.get(key, (0, ""))[0], 0)
        return _enter_chain(
            replace(state, phase="chain", audit_chains=keys, rows_total=total), archived
        )
    entries, transfers = await full.sizes(engine)
    await full.start(engine, state.run_key)
    return replace(state, phase="entries", rows_total=entries + transfers)


def _enter_chain(state: FullVerifyState, archived: dict[str, tuple[int, str]]) -> FullVerifyState:
    """Start the next chain left in `state`, from its archive anchor."""
    key, *rest = state.audit_chains
    seq, hash_ = archived.get(key, (0, audit.GENESIS))
    return replace(state, audit_chain=key, audit_chains=rest, audit_seq=seq, audit_hash=hash_)


async def next_chunk(
    engine: AsyncEngine, state: FullVerifyState, chunk_size: int
) -> FullVerifyState:
    """Read the chunk after `state`; the state after it (with its problems, if any)."""
    if state.phase == "":
        state = await _start(engine, state)
    if state.kind == "audit":
        report, done = await audit.verify_chunk(
            engine,
            state.audit_seq,
            state.audit_hash,
            chunk_size,
            audit.key_chain(state.audit_chain),
        )
        heads = {**state.audit_heads, state.audit_chain: [report.head_seq, report.head_hash]}
        after = replace(
            state,
            audit_seq=report.head_seq,
            audit_hash=report.head_hash,
            records=state.records + report.entries,
            rows_done=state.rows_done + report.entries,
            chunks=state.chunks + 1,
            problems=list(report.problems),
            audit_heads=heads,
        )
        if not (done and report.ok):
            return after
        if not after.audit_chains:
            return replace(after, phase="done")
        async with engine.connect() as conn:
            archived = await audit.archive_anchors(conn)
        return _enter_chain(after, archived)
    cursor = full.Cursor(**{name: getattr(state, name) for name in _CURSOR_FIELDS})
    chunk = await full.verify_chunk(engine, cursor, chunk_size, state.run_key)
    return replace(
        state,
        **asdict(chunk.cursor),
        rows_done=state.rows_done + chunk.rows,
        chunks=state.chunks + 1,
        problems=chunk.problems,
    )


async def verify_chunks(
    engine: AsyncEngine,
    state: FullVerifyState,
    chunk_size: int,
    max_chunks: int,
    on_chunk: OnChunk | None = None,
) -> FullVerifyState:
    """Read up to `max_chunks` chunks from `state`, calling `on_chunk` with the state after
    each (the activity heartbeats it); stop at the end or at the first problem."""
    for _ in range(max_chunks):
        if state.finished:
            break
        state = await next_chunk(engine, state, chunk_size)
        if on_chunk is not None:
            await on_chunk(state)
    return state


async def finish(engine: AsyncEngine, state: FullVerifyState, actor: str) -> FullVerifyResult:
    """After the last chunk (or the first problem): the ledger's zero-sum check; then a
    `full` checkpoint, as the one-snapshot verification writes (the audit one anchors the
    chain's head verified; the ledger one records the totals and makes the run's start cut,
    which the chunks verified, the accounts' verified state). A run with a problem writes
    none."""
    result = FullVerifyResult(
        kind=state.kind, checked=state.describe(), rows=state.rows_done, problems=state.problems
    )
    if state.kind == "audit":
        if result.problems:
            return result
        platform = state.audit_heads[audit.PLATFORM_KEY]
        async with engine.begin() as conn:
            result.checkpoint_id = await checkpoints.record(
                conn,
                kind="audit",
                mode="full",
                checked_rows=state.records,
                actor=actor,
                audit_seq=int(platform[0]),
                audit_hash=str(platform[1]),
                audit_heads=state.audit_heads,
            )
        result.ok = True
        return result
    totals: dict[str, list[int]] = {}
    if not result.problems:
        result.problems, totals = await full.verify_totals(engine)
    if result.problems:
        await full.discard_states(engine, state.run_key)
        return result
    async with engine.begin() as conn:

        async def with_id(checkpoint_id: int) -> None:
            await full.adopt_states(conn, state.run_key, checkpoint_id)

        result.checkpoint_id = await checkpoints.record(
            conn,
            kind="ledger",
            mode="full",
            checked_rows=state.entries,
            actor=actor,
            ledger_totals=totals,
            with_id=with_id,
        )
    result.ok = True
    return result


async def run_to_end(
    engine: AsyncEngine, kind: str, chunk_size: int, actor: str
) -> FullVerifyResult:
    """The whole verification in this process, without Temporal (the bench times it)."""
    state = FullVerifyState(kind=kind, run_key=f"local/{uuid.uuid4().hex}")
    while not state.finished:
        state = await next_chunk(engine, state, chunk_size)
    return await finish(engine, state, actor)
