"""One async SQLAlchemy engine per process, created lazily from the settings."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kernel.settings import Settings, get_settings

_engines: dict[str, AsyncEngine] = {}


def get_engine(settings: Settings | None = None) -> AsyncEngine:
    """Return the process's engine for the configured database (pooled, pre-pinged)."""
    url = (settings or get_settings()).database.url
    engine = _engines.get(url)
    if engine is None:
        engine = create_async_engine(
            url,
            pool_size=10,
            max_overflow=10,
            # pre-ping: PostgreSQL restarts (chaos, failover) must not surface as errors
            pool_pre_ping=True,
            # statement parameters are names, IBANs, addresses: never in a log line or an
            # exception message (SQLAlchemy's echo/DEBUG logging and its StatementError
            # text both print them otherwise), whatever a logger's level is set to
            hide_parameters=True,
        )
        _engines[url] = engine
    return engine


async def dispose_engines() -> None:
    """Close every pooled connection (clean shutdown of workers, API and tests)."""
    for engine in list(_engines.values()):
        await engine.dispose()
    _engines.clear()
