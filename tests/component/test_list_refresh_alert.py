"""The ListRefreshRefused alert with the real promtool: the rule parses, and its unit tests
(deploy/prometheus/list_refresh.test.yml) make it fire on a refusal and resolve after."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from kernel.settings import PROJECT_ROOT

PROMETHEUS = PROJECT_ROOT / "deploy" / "prometheus"
RULE_TESTS = PROMETHEUS / "list_refresh.test.yml"


def promtool() -> str:
    """promtool from Debian's `prometheus` package (apt-get install prometheus)."""
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not on PATH: apt-get install prometheus")
    return found


def test_list_refresh_refused_fires_and_resolves() -> None:
    tested = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name],
        capture_output=True,
        text=True,
        cwd=PROMETHEUS,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_rule_has_its_runbook_and_counts_the_refresh_metric() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    (rule,) = [r for g in rules["groups"] for r in g["rules"] if r["alert"] == "ListRefreshRefused"]
    runbook = rule["annotations"]["runbook_url"]
    assert runbook == "docs/runbooks/ListRefreshRefused.md"
    assert (PROJECT_ROOT / runbook).is_file()
    # the series the refresh activity counts (activities/list_refresh.py, `Refusal.announce`)
    source = (PROJECT_ROOT / "activities" / "list_refresh.py").read_text()
    assert '"payments_list_refresh_refused"' in source
    assert "payments_list_refresh_refused" in rule["expr"]
    assert Path(runbook).stem == rule["alert"]
