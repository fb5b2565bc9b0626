"""One async SQLAlchemy engine per process, created lazily from the settings."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from kernel.settings import Settings, get_settings

_engines: dict[str, AsyncEngine] = {}
# when a pooled connection was last given back (its record's `info`, which a reconnect clears)
_RETURNED_AT = "payments_returned_at"


def ping_stale_connections(engine: AsyncEngine, after_idle_seconds: float) -> None:
    """Ping a pooled connection on checkout only if it sat idle `after_idle_seconds` or more.

    SQLAlchemy's `pool_pre_ping` pings on every checkout: one extra round trip per
    transaction (8 per `POST /v1/payments`, more per payment in the worker). A connection
    given back moments ago was working then; a PostgreSQL restart or failover takes longer
    than a second, so one that is dead after a shorter rest was already dead when a ping
    would have found its server down too: the caller gets the same error either way, and
    every connection that rested through a restart is still pinged and replaced before use.
    `after_idle_seconds=0` pings on every checkout, as `pool_pre_ping` does.
    """
    sync = engine.sync_engine
    dialect = sync.dialect

    @event.listens_for(sync.pool, "checkin")
    def returned(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:
            record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(sync.pool, "checkout")
    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        returned_at = record.info.get(_RETURNED_AT)
        if returned_at is None:
            return  # connected just now, for this checkout
        if time.monotonic() - returned_at < after_idle_seconds:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as err:
            if dialect.is_disconnect(err, dbapi_connection, None):
                # the pool reconnects and retries the checkout (SQLAlchemy's own recipe)
                raise exc.DisconnectionError() from err
            raise


def get_engine(settings: Settings | None = None) -> AsyncEngine:
    """Return the process's engine for the configured database (pooled, pinged when stale)."""
    settings = settings or get_settings()
    url = settings.database.url
    engine = _engines.get(url)
    if engine is None:
        engine = create_async_engine(
            url,
            pool_size=10,
            max_overflow=10,
            # statement parameters are names, IBANs, addresses: never in a log line or an
            # exception message (SQLAlchemy's echo/DEBUG logging and its StatementError
            # text both print them otherwise), whatever a logger's level is set to
            hide_parameters=True,
        )
        # PostgreSQL restarts (chaos, failover) must not surface as errors
        ping_stale_connections(engine, settings.database.ping_after_idle_seconds)
        _engines[url] = engine
    return engine


@asynccontextmanager
async def autocommit(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A pooled connection on which each statement commits by itself: a single read, or a
    single-statement write, without the BEGIN and ROLLBACK (or COMMIT) round trips a
    transaction adds around it."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn


async def dispose_engines() -> None:
    """Close every pooled connection (clean shutdown of workers, API and tests)."""
    for engine in list(_engines.values()):
        await engine.dispose()
    _engines.clear()
