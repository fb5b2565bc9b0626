"""Record the histories the workflow tests leave, for tests/replay (`make record-histories`).

With RECORD_HISTORIES=1 each tracked workflow's history is written to
tests/replay/histories/<prefix>_<test>_<n>.json after its test; tests/replay replays every
file there against today's code, so a change that breaks a recorded path fails the build.
`make record-histories` archives the current generation first (tests/replay/generations.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from temporalio.client import WorkflowHandle

REPLAY_DIR = Path(__file__).resolve().parents[1] / "replay" / "histories"
HandleT = TypeVar("HandleT", bound=WorkflowHandle[Any, Any])


class HistoryRecorder:
    """The workflows one test module starts, recorded after each test when asked to."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.handles: list[WorkflowHandle[Any, Any]] = []

    def track(self, handle: HandleT) -> HandleT:
        """Record `handle`'s history after this test (returned for chaining)."""
        self.handles.append(handle)
        return handle

    async def save(self, test_name: str) -> None:
        """Write the tracked histories (only with RECORD_HISTORIES set), then forget them."""
        handles, self.handles = self.handles, []
        if not os.environ.get("RECORD_HISTORIES"):
            return
        REPLAY_DIR.mkdir(parents=True, exist_ok=True)
        # parametrized ids ("test_x[minor]") become plain file names ("x_minor")
        name = re.sub(r"\W+", "_", test_name.removeprefix("test_")).strip("_")
        for index, handle in enumerate(handles):
            history = await handle.fetch_history()
            (REPLAY_DIR / f"{self.prefix}_{name}_{index}.json").write_text(history.to_json())

    def fixture(self) -> Callable[..., AsyncIterator[None]]:
        """An autouse fixture that saves each test's histories (assign it in the module)."""

        @pytest.fixture(autouse=True)
        async def record_histories(request: pytest.FixtureRequest) -> AsyncIterator[None]:
            self.handles.clear()
            yield
            await self.save(request.node.name)

        return record_histories
