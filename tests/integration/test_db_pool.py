"""Pooled connections are pinged before use only after resting (kernel/db.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kernel.db import ping_stale_connections
from ops.devstack import Stack


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def terminate(engine: AsyncEngine, pid: int) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await conn.commit()


def one_connection(database: Stack, after_idle_seconds: float) -> AsyncEngine:
    engine = create_async_engine(database.settings.database.url, pool_size=1, max_overflow=0)
    ping_stale_connections(engine, after_idle_seconds)
    return engine


async def test_a_rested_connection_whose_server_went_away_is_replaced_before_use(
    database: Stack, engine: AsyncEngine
) -> None:
    pooled = one_connection(database, after_idle_seconds=0.0)
    try:
        first = await backend_pid(pooled)
        await terminate(engine, first)

        # pinged on checkout, found dead, reconnected: the caller never sees it
        assert await backend_pid(pooled) != first
    finally:
        await pooled.dispose()


async def test_a_connection_given_back_moments_ago_is_used_without_a_ping(
    database: Stack, engine: AsyncEngine
) -> None:
    pooled = one_connection(database, after_idle_seconds=3600.0)
    try:
        first = await backend_pid(pooled)
        await terminate(engine, first)

        # no ping, so the dead connection is used and fails (as it would have failed had
        # the server still been down), and the pool replaces it for the next caller
        with pytest.raises(exc.DBAPIError) as failure:
            await backend_pid(pooled)
        assert failure.value.connection_invalidated
        assert await backend_pid(pooled) != first
    finally:
        await pooled.dispose()
