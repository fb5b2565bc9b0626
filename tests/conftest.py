"""Shared fixtures: real PostgreSQL, and the whole platform as real processes.

Everything runs in a temporary data directory on free loopback ports, so tests never touch
a developer's `.data` or a running `make dev`.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.db import dispose_engines, get_engine
from kernel.settings import Settings
from ops.devstack import Stack, isolated_settings
from ops.migrate import upgrade


def make_settings(data_dir: Path) -> Settings:
    """Settings for an isolated stack: temp data, free ports, fast rails."""
    return isolated_settings(
        data_dir,
        {
            "ach.window_seconds": 2.0,
            # an unanswered file is asked about after two attempts, not eight
            "ach.submit_max_attempts": 2,
            "ach.return_window_seconds": 60.0,
            "sepa.return_window_seconds": 60.0,
            # a prenote not returned this long after its file was accepted is verified
            "counterparties.prenote_window_seconds": 15.0,
            # an ACH reversal not returned this long after its file was accepted stands
            "ach.reversal_return_window_seconds": 15.0,
            # the creditor's bank returns a SEPA payment a second (bank time) after settlement
            "banksim.sepa_return_delay_seconds": 1.0,
            "banksim.settle_delay_seconds": 0.3,
            "rails.poll_interval_seconds": 10.0,
            "webhooks.retry_initial_seconds": 0.5,
            # the fuzzer screens hundreds of names with one key; the limit has its own test
            "screening.rate_limit_per_minute": 100_000,
        },
    )


@pytest.fixture(scope="session")
def stack_settings() -> Iterator[Settings]:
    """Settings shared by every fixture of this test session.

    Not under pytest's tmp_path: pytest makes its base directory 0700 on every run, and
    PostgreSQL runs as another system user (we are root) that must traverse the path.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="payments-test-"))
    yield make_settings(data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def database(stack_settings: Settings) -> Iterator[Stack]:
    """A real PostgreSQL with the schema migrated (no other component)."""
    stack = Stack(stack_settings, web_ui=False)
    stack.start_postgres()
    yield stack
    stack.postgres.stop()


@pytest.fixture
async def engine(database: Stack) -> AsyncIterator[AsyncEngine]:
    """An async engine on the test database."""
    yield get_engine(database.settings)
    await dispose_engines()


@pytest.fixture(scope="session")
def stack(database: Stack) -> Iterator[Stack]:
    """The whole platform: Temporal dev server, bank simulator, a worker and the API."""
    database.start_temporal()
    database.start_banksim()
    database.start_worker()
    database.start_api()
    yield database
    for name in reversed(list(database.processes)):
        database.stop(name)


@pytest.fixture
def isolated_database_url(database: Stack) -> Iterator[str]:
    """A fresh, migrated database of its own on the test server.

    For tests that reason about the whole ledger (expiry counts, global verification): the
    shared database has the platform's own traffic and its maintenance schedule running.
    """
    import psycopg

    name = f"isolated_{uuid.uuid4().hex[:12]}"
    admin = f"postgresql://postgres@127.0.0.1:{database.settings.database.embedded_port}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = (
        f"postgresql+psycopg://postgres@127.0.0.1:{database.settings.database.embedded_port}/{name}"
    )
    upgrade(database.settings.updated({"database.url": url}))
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


# Every test says what it costs by the folder it lives in (`make unit`, `make component`,
# `make integration`, `make e2e` run one tier; `make test` runs them all).
TIERS = {
    "unit": "unit",  # plain Python, no process or server: milliseconds
    "component": "component",  # one real component on loopback (the bank simulator)
    "workflows": "component",  # workflows on Temporal's time-skipping test server
    "replay": "component",  # recorded histories replayed against today's workflow code
    "integration": "integration",  # real PostgreSQL, Temporal dev server, worker, API
    "chaos": "e2e",  # the whole platform while processes are killed and the bank fails
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier; a test outside a tier's folder is an error."""
    root = Path(__file__).parent
    for item in items:
        folder = item.path.relative_to(root).parts[0]
        if folder not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in a tier folder {sorted(TIERS)}")
        item.add_marker(TIERS[folder])


_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remember the outcome for `pytest_unconfigure`."""
    global _exit_status
    _exit_status = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Exit with pytest's status without interpreter finalization.

    See `kernel.temporal_client.exit_without_finalizing`: the Temporal runtime's threads
    can abort finalization.
    """
    import os
    import sys

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
