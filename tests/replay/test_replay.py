"""Replay the recorded histories of every long-running workflow against today's code.

A change that alters the commands a workflow issues for an existing history (reordered
steps, a new activity without a patch) raises a non-determinism error here, so it cannot
ship and wedge workflows already in flight. Histories come in generations
(tests/replay/generations.py): `make record-histories` archives the current one before it
records, and every generation replays until docs/versioning.md lets it be deleted.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.replay.generations import HISTORIES, generation_of
from workflows import patches
from workflows.registry import WORKFLOWS

FILES = sorted(HISTORIES.glob("*.json"))
WORKFLOWS_DIR = Path(patches.__file__).parent
# the workflows that wait for people, banks or time: each needs recorded histories
LONG_RUNNING = {
    "Payment",
    "Onboarding",
    "AchBatch",
    "WebhookDelivery",
    "ListRefresh",
    "RescreenCustomers",
    "Reconciliation",
    # reads the whole ledger or audit chain over hours, across deploys
    "FullVerification",
    "CounterpartyVerification",
    "RescreenCounterparties",
    # waits for the bank's answer to a recall (SEPA) or out a reversal's return window (ACH)
    "Recall",
    # a payment schedule's run: short, but its activity may be retried across a deploy
    "ScheduledPaymentRun",
}


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def workflow_type(history: WorkflowHistory) -> str:
    started = history.events[0].workflow_execution_started_event_attributes
    return started.workflow_type.name


def test_every_main_payment_path_has_a_recorded_history() -> None:
    names = {path.stem for path in FILES if generation_of(path) is None}
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
        assert any(path in name for name in names if name.startswith("payment_")), path


def test_every_long_running_workflow_has_current_histories() -> None:
    recorded = {workflow_type(load(path)) for path in FILES if generation_of(path) is None}
    assert recorded >= LONG_RUNNING, LONG_RUNNING - recorded


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
async def test_history_replays_deterministically(path: Path) -> None:
    await Replayer(workflows=list(WORKFLOWS)).replay_workflow(load(path))


async def test_every_patch_has_replayed_histories_on_both_sides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """For every patch, one history takes its old branch on replay and one its new branch:
    a patch cannot be added without histories that prove both still replay."""
    answers: dict[str, set[bool]] = defaultdict(set)
    asked: list[tuple[str, bool]] = []
    real_patched = workflow.patched

    def patched(patch_id: str) -> bool:
        answer = real_patched(patch_id)
        asked.append((patch_id, answer))
        return answer

    # the sandbox passes temporalio through: workflows call this module attribute
    monkeypatch.setattr(workflow, "patched", patched)
    replayer = Replayer(workflows=list(WORKFLOWS))
    for path in FILES:
        history = load(path)
        asked.clear()
        await replayer.replay_workflow(history)
        for patch_id, answer in asked:
            answers[f"{workflow_type(history)}/{patch_id}"].add(answer)
    for patch in patches.ALL:
        if patch.stage is patches.Stage.PATCHED:
            sides = answers[f"{patch.workflow}/{patch.id}"]
            assert sides == {False, True}, f"{patch.id}: histories only on side(s) {sides}"


def test_workflows_name_patches_only_through_the_patches_module() -> None:
    """No `workflow.patched("…")` or `deprecate_patch("…")` with an id outside patches.py."""
    for module in sorted(WORKFLOWS_DIR.glob("*.py")):
        if module.name == "patches.py":
            continue
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr not in ("patched", "deprecate_patch"), (
                    f"{module.name}:{node.lineno} calls workflow.{node.func.attr} directly"
                )


def test_the_folded_payment_patches_are_those_before_the_fold() -> None:
    """`payment-patches-as-one` stands for exactly the Payment patches in force when it was
    added: a Payment patch listed before it by mistake would be taken as in force for every
    payment with its marker, without a marker of its own."""
    assert {patch.id for patch in patches.FOLDED} == {
        "recheck-kyc-after-review",
        "adopt-status-before-persisting",
        "limits-hold-before-review",
        "local-checks-and-status-records",
        "sepa-return-window",
        "ask-bank-before-resend",
        "review-tokens",
        "recall-ends-payment",
        "scheduled-execution",
    }
