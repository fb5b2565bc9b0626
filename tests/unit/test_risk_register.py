"""The risk register stays honest: every built control is proved by tests that exist.

`docs/risk-register.yaml` is kept by hand and `docs/risk-register.md` generated from it
(`make risk-register`, `ops/risk_register.py`). These tests read the test files with `ast`,
never pytest's collection of the whole suite, so they cost milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ops import risk_register
from ops.risk_register import PAGE, REGISTER, RegisterError, Risk, collect_test_ids, problems


def _risk(**changes: object) -> Risk:
    fields: dict[str, object] = {
        "id": "FIN-99",
        "title": "t",
        "category": "financial",
        "likelihood": "low",
        "impact": "high",
        "risk": "r",
        "control": "c",
        "status": "controlled",
        "issue": None,
        "tests": ("tests/unit/test_risk_register.py::test_the_register_is_honest",),
    }
    fields.update(changes)
    return Risk(**fields)  # type: ignore[arg-type]


def test_the_register_is_honest() -> None:
    risks = risk_register.load()
    found = problems(risks, collect_test_ids())
    assert not found, "\n".join(found)
    # every kind of risk the issue names is in it, and the open ones name their issue
    assert {r.category for r in risks} == set(risk_register.CATEGORIES)
    assert all(r.issue is not None for r in risks if r.status == "open")
    assert len(risks) >= 25


def test_the_page_is_generated_from_the_current_register() -> None:
    expected = risk_register.render(risk_register.load())
    assert PAGE.read_text(encoding="utf-8") == expected, (
        "docs/risk-register.md is stale: run `make risk-register`"
    )


def test_a_dangling_test_id_is_refused() -> None:
    risk = _risk(tests=("tests/integration/test_outcome_unknown.py::test_no_such_test",))
    assert problems([risk], collect_test_ids()) == [
        "FIN-99: names tests/integration/test_outcome_unknown.py::test_no_such_test,"
        " which is no test in tests/"
    ]


def test_a_built_control_without_a_test_is_refused_and_only_open_risks_may_have_none() -> None:
    ids = collect_test_ids()
    [message] = problems([_risk(tests=())], ids)
    assert "FIN-99: its control names no test" in message
    assert problems([_risk(status="open", issue=24, tests=())], ids) == []
    assert problems([_risk(status="open", tests=())], ids) == [
        "FIN-99: an open risk names the issue that builds its control"
    ]


def test_ids_are_unique() -> None:
    assert problems([_risk(), _risk()], collect_test_ids()) == ["FIN-99: the id is used twice"]


def test_ids_come_from_functions_and_test_class_methods(tmp_path: Path) -> None:
    tier = tmp_path / "tests" / "unit"
    tier.mkdir(parents=True)
    (tier / "test_x.py").write_text(
        "def test_a(): ...\n"
        "async def test_b(): ...\n"
        "def helper(): ...\n"
        "class TestC:\n"
        "    def test_d(self): ...\n"
        "    def helper(self): ...\n"
        "class Other:\n"
        "    def test_e(self): ...\n"
    )
    (tier / "support.py").write_text("def test_not_a_test_file(): ...\n")
    assert collect_test_ids(tmp_path / "tests") == {
        "tests/unit/test_x.py::test_a",
        "tests/unit/test_x.py::test_b",
        "tests/unit/test_x.py::TestC::test_d",
    }
    # a parametrized case is proved by its function
    risk = _risk(tests=("tests/unit/test_x.py::test_a[sepa]",))
    assert problems([risk], collect_test_ids(tmp_path / "tests")) == []


def test_values_outside_the_scales_are_refused(tmp_path: Path) -> None:
    register = tmp_path / "register.yaml"
    text = REGISTER.read_text(encoding="utf-8")
    register.write_text(text.replace("impact: severe", "impact: catastrophic", 1))
    with pytest.raises(RegisterError, match="impact"):
        risk_register.load(register)
