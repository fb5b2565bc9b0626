"""The full verification's activities: a few chunks with a heartbeat after each, and the
finish (services/full_verification.py holds the logic).

A retried attempt starts from the state its predecessor last heartbeated, not from the one
the workflow passed: the chunks read before the crash are not read again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.converter import value_to_type

from services.full_verification import finish, verify_chunks
from workflows.models import (
    FullVerifyChunksInput,
    FullVerifyFinishInput,
    FullVerifyResult,
    FullVerifyState,
)

AfterChunk = Callable[[FullVerifyState], Awaitable[None]]


class VerificationActivities:
    """Full verifications of the ledger and the audit chain."""

    def __init__(self, engine: AsyncEngine, after_chunk: AfterChunk | None = None) -> None:
        self._engine = engine
        # called after each chunk's heartbeat (tests stop a worker there)
        self._after_chunk = after_chunk

    async def _reported(self, state: FullVerifyState) -> None:
        activity.heartbeat(state)
        if self._after_chunk is not None:
            await self._after_chunk(state)

    @activity.defn(name="verify_full_chunks")
    async def verify_full_chunks(self, request: FullVerifyChunksInput) -> FullVerifyState:
        """Read up to `max_chunks` chunks, heartbeating the state after each."""
        state = request.state
        details = activity.info().heartbeat_details
        if details:
            # a retry: resume after the last chunk the lost attempt reported
            state = value_to_type(FullVerifyState, details[0])
        return await verify_chunks(
            self._engine, state, request.chunk_size, request.max_chunks, self._reported
        )

    @activity.defn(name="finish_full_verification")
    async def finish_full_verification(self, request: FullVerifyFinishInput) -> FullVerifyResult:
        """The last checks and the checkpoint, when every chunk passed."""
        return await finish(self._engine, request.state, request.actor)
