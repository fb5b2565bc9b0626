"""The benchmark tools' own logic: shape calibration, history timelines, the load mix."""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from kernel.settings import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "bench"))

import _profile
import _stack
import load
import workflow_bench

HISTORIES = PROJECT_ROOT / "tests" / "replay" / "histories"
HAPPY = HISTORIES / "payment_happy_path_settles_on_the_rail_callback_0.json"


def history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def test_shape_follows_the_recorded_payment() -> None:
    shape = workflow_bench.shape_of(history(HAPPY), "bare", False, False)

    assert shape.activities[0] == "check_debtor_kyc"
    assert shape.activities[shape.trigger] == "submit_to_rail"
    # the payment records `submitted`, then waits for the rail before posting the hold
    assert shape.activities[shape.wait_before] == "post_hold"
    assert shape.wait_before == shape.trigger + 2
    assert shape.signals == 3  # what this recording received
    assert set(shape.task_queues) == {"bare"}
    assert shape.upsert_after == [] and shape.local == []
    # the payment records its statuses in local activities; bare runs them as ordinary ones
    assert shape.activities.count("record_payment_status") == 2


def test_shape_variants_split_queues_upsert_and_run_locally() -> None:
    shape = workflow_bench.shape_of(history(HAPPY), "bare", True, True, local_as_payment=True)

    queues = dict(zip(shape.activities, shape.task_queues, strict=True))
    assert queues["hold_funds"] == "bare-ledger"
    assert queues["submit_to_rail"] == "bare-rails"
    assert queues["record_payment_status"] == "bare"
    records = [i for i, name in enumerate(shape.activities) if name == "record_payment_status"]
    assert shape.upsert_after == records == shape.local


def test_shape_of_a_payment_that_never_reached_the_rail_has_no_signals() -> None:
    path = HISTORIES / "payment_insufficient_funds_fails_without_submitting_0.json"
    shape = workflow_bench.shape_of(history(path), "bare", False, False)

    assert "submit_to_rail" not in shape.activities
    assert (shape.trigger, shape.signals, shape.wait_before) == (-1, 0, -1)


def test_timeline_accounts_for_every_task_of_the_history() -> None:
    events = list(history(HAPPY).events)
    timeline = _profile.timeline(events)

    started = sum(1 for e in events if e.HasField("workflow_task_started_event_attributes"))
    assert timeline.workflow_tasks == started
    assert [span.name for span in timeline.activities] == workflow_bench.shape_of(
        history(HAPPY), "q", False, False
    ).activities
    assert timeline.signals == 3
    assert timeline.timers == 1
    local = [span for span in timeline.activities if span.local]
    assert [span.name for span in local] == ["record_payment_status"] * 2
    assert all(span.wait_ms == 0 for span in local)
    parts = (
        timeline.workflow_task_wait_ms
        + timeline.workflow_task_run_ms
        + timeline.activity_wait_ms
        + timeline.activity_run_ms
    )
    # a signal's workflow task overlaps the activity it arrived during: covered <= the sum
    assert 0 < timeline.covered_ms <= min(parts, timeline.total_ms) + 1e-6
    assert timeline.other_ms == pytest.approx(timeline.total_ms - timeline.covered_ms)


def test_union_of_overlapping_segments_counts_each_moment_once() -> None:
    assert _profile._union_ms([(0, 10), (5, 15), (20, 25), (21, 22)]) == 20


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert _stack.percentile(values, 0.5) == 50.0
    assert _stack.percentile(values, 0.99) == 99.0
    assert _stack.percentile(values, 1.0) == 100.0
    assert _stack.percentile([7.0], 0.95) == 7.0


def test_accounts_keep_customers_under_the_daily_count_limit() -> None:
    assert _stack.accounts_needed(10, 4) == 4
    needed = _stack.accounts_needed(1_000, 4)
    assert needed * _stack.PAYMENTS_PER_ACCOUNT >= 1_000
    assert _stack.PAYMENTS_PER_ACCOUNT < 100  # the low-risk tier's daily count limit


def test_overrides_are_checked_against_settings() -> None:
    assert _stack.parse_overrides(["PAYMENTS_WORKER_MAX_CONCURRENT_ACTIVITIES=7"]) == {
        "worker.max_concurrent_activities": "7"
    }
    # a variable that kept its old name reaches its section; a path is taken as it is
    assert _stack.parse_overrides(["PAYMENTS_POSTGRES_PORT=5", "ach.window_seconds=2"]) == {
        "database.embedded_port": "5",
        "ach.window_seconds": "2",
    }
    with pytest.raises(SystemExit):
        _stack.parse_overrides(["no_such_setting=1"])


def test_mix_draws_the_intended_shares() -> None:
    mix = load.Mix(sanctions=0.02, insufficient=0.03, rail_reject=0.01, ach_share=0.3)
    rng = random.Random(7)
    draws = [mix.draw(rng) for _ in range(50_000)]
    kinds = Counter(kind for kind, _ in draws)

    assert kinds["sanctions"] / len(draws) == pytest.approx(0.02, abs=0.004)
    assert kinds["insufficient"] / len(draws) == pytest.approx(0.03, abs=0.004)
    assert kinds["rail_reject"] / len(draws) == pytest.approx(0.01, abs=0.003)
    assert all(rail == "sepa" for kind, rail in draws if kind == "rail_reject")
    normal_rails = Counter(rail for kind, rail in draws if kind == "normal")
    assert normal_rails["ach"] / sum(normal_rails.values()) == pytest.approx(0.3, abs=0.01)


def test_events_read_out_of_order_keep_the_latest_status() -> None:
    state = load.State()
    payment = load.Payment(0, "normal", "sepa", scheduled=0.0, payment_id="pay_1")
    state.by_id["pay_1"] = payment

    def event(status: str, at: str) -> dict[str, object]:
        return {"created_at": at, "data": {"payment_id": "pay_1", "status": status}}

    load._apply_event(state, event("settled", "2026-11-29T10:00:02+00:00"))
    load._apply_event(state, event("submitted", "2026-11-29T10:00:01+00:00"))
    load._apply_event(state, event("other-tenant", "2026-11-29T10:00:03+00:00") | {"data": {}})

    assert payment.status == "settled"
    assert payment.resolved


def test_bodies_follow_the_kind_of_payment() -> None:
    accounts = load.Accounts(
        funded={"EUR": ["acc_eur"], "USD": ["acc_usd"]},
        empty={"EUR": ["acc_empty_eur"], "USD": ["acc_empty_usd"]},
    )
    rng = random.Random(1)

    def body(kind: str, rail: str = "sepa") -> dict[str, object]:
        return load.body_for(load.Payment(0, kind, rail, 0.0), accounts, rng)

    assert body("normal")["account_id"] == "acc_eur"
    assert body("insufficient")["account_id"] == "acc_empty_eur"
    assert body("sanctions")["creditor"]["name"] == load.SANCTIONED_NAME  # type: ignore[index]
    assert body("rail_reject")["creditor"]["iban"] == load.REJECTED_IBAN  # type: ignore[index]
    ach = body("normal", "ach")
    assert (ach["currency"], ach["account_id"]) == ("USD", "acc_usd")
    assert "routing_number" in ach["creditor"]  # type: ignore[operator]
