"""Archiving a generation of histories moves the current files aside and deletes nothing."""

from __future__ import annotations

from pathlib import Path

from tests.replay.generations import archive_current, generation_of


def test_archiving_moves_the_current_generation_after_the_latest(tmp_path: Path) -> None:
    for name in ("v1_payment_a_0.json", "v4_payment_a_0.json", "payment_a_0.json"):
        (tmp_path / name).write_text(name)
    (tmp_path / "onboarding_b_0.json").write_text("onboarding")
    archived = archive_current(tmp_path)
    assert [path.name for path in archived] == [
        "v5_onboarding_b_0.json",
        "v5_payment_a_0.json",
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "v1_payment_a_0.json",
        "v4_payment_a_0.json",
        "v5_onboarding_b_0.json",
        "v5_payment_a_0.json",
    ]
    assert (tmp_path / "v5_payment_a_0.json").read_text() == "payment_a_0.json"
    assert archive_current(tmp_path) == []  # nothing current: nothing moves


def test_generation_of_names() -> None:
    assert generation_of(Path("v12_payment_x_0.json")) == 12
    assert generation_of(Path("payment_x_0.json")) is None
