"""Replay the recorded histories of every payment path against today's workflow code.

A change that alters the commands a workflow issues for an existing history (reordered
steps, a new activity without `workflow.patched`) raises a non-determinism error here, so it
cannot ship and wedge payments already in flight. Re-record deliberately with
`make record-histories` only when old histories no longer exist in production.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.payment import PaymentWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_every_main_path_has_a_recorded_history() -> None:
    names = {path.stem for path in HISTORIES}
    for path in (
        "happy_path",
        "rail_rejection",
        "polling",
        "insufficient_funds",
        "kyc",
        "review_then_approval",
        "review_rejection",
        "ops_retry",
        "cancel",
    ):
        assert any(path in name for name in names), path


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_deterministically(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await Replayer(workflows=[PaymentWorkflow]).replay_workflow(history)
