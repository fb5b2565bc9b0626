"""SQL parameters never reach a log line or an error message (#17): the values bound to a
statement, and the rows it returns, are customers' names and IBANs."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from kernel.db import get_engine
from kernel.logging import configure_logging
from ops.devstack import Stack

# every logger that could print a statement or a row: SQLAlchemy's, the pool's, psycopg's
LOGGERS = ("sqlalchemy.engine", "sqlalchemy.pool", "psycopg", "psycopg.pool")


@pytest.fixture
def platform_log() -> Iterator[io.StringIO]:
    """The platform's own logging (kernel/logging.py) at DEBUG, with those loggers turned up
    to DEBUG too, written to a buffer; the previous configuration afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved = {name: logging.getLogger(name).level for name in LOGGERS}
    configure_logging(logging.DEBUG)
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    stream = io.StringIO()
    handler.setStream(stream)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield stream
    configure_logging()
    root.handlers[:], root.level = saved_handlers, saved_level
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


async def test_statement_parameters_and_rows_are_not_logged_even_at_debug(
    database: Stack, platform_log: io.StringIO
) -> None:
    engine = get_engine(database.settings)
    assert engine.sync_engine.hide_parameters
    assert not engine.sync_engine.echo
    name = f"Gennady Karlov {uuid.uuid4().hex}"
    iban = "DE89370400440532013000"
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT :name AS name, :iban AS iban"), {"name": name, "iban": iban}
                )
            ).one()
            assert (row.name, row.iban) == (name, iban)
            # a failing statement: its error message names the statement, not the values (an
            # error whose own text quotes a value, such as PostgreSQL's "invalid input syntax
            # for type integer: <value>", is the server's message, not a logged parameter)
            with pytest.raises(DBAPIError) as failure:
                await conn.execute(text("SELECT length(:name) / 0"), {"name": name})
        logging.getLogger("payments.test").exception("statement failed", exc_info=failure.value)
    finally:
        await engine.dispose()
    logged = platform_log.getvalue()
    # the statements and the failure are logged (at DEBUG the loggers say all they say) ...
    assert "SELECT :name" in logged or "SELECT %(name)s" in logged, logged[:2000]
    assert "division by zero" in logged
    assert "parameters hidden" in logged
    # ... and never a value bound to them or returned by them
    assert name not in logged
    assert iban not in logged
    assert "Gennady Karlov" not in str(failure.value)
