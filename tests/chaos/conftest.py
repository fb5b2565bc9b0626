"""A stack of its own for chaos: it restarts Temporal and PostgreSQL under load, which the
shared integration stack must never see."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.devstack import Stack
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def chaos_stack() -> Iterator[Stack]:
    """PostgreSQL, Temporal, the bank simulator, two workers and the API."""
    data_dir = Path(tempfile.mkdtemp(prefix="payments-chaos-"))
    settings = make_settings(data_dir).updated(
        {
            "rails.poll_interval_seconds": 5.0,
            "ach.window_seconds": 3.0,
            # returns come back 5 bank-seconds after settlement, inside the 60 s window
            "banksim.sepa_return_delay_seconds": 5.0,
        }
    )
    stack = Stack(settings, web_ui=False)
    try:
        stack.start_all()
        stack.start_worker("worker2")
        yield stack
    finally:
        stack.stop_all()
        shutil.rmtree(data_dir, ignore_errors=True)
