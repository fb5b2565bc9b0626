"""Every alert has a runbook and a rule test that fires it; runbooks cite real commands.

Static checks of deploy/prometheus/alerts.yml, deploy/prometheus/alerts.test.yml and
docs/runbooks/<alert>.md. `promtool` itself runs in tests/component/test_prometheus_rules.py.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

import ops.cli

# the repository (these files are read where they are checked in, not from settings)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
RULES = PROJECT_ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = PROJECT_ROOT / "deploy" / "prometheus" / "alerts.test.yml"
RUNBOOKS = PROJECT_ROOT / "docs" / "runbooks"
SECTIONS = ("## What it means", "## Confirm", "## Act", "## Escalate")


def alert_rules() -> dict[str, dict[str, Any]]:
    """Every alerting rule of alerts.yml by name."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def _minutes(duration: str) -> float:
    """A promtool eval_time (`90s`, `15m`, `60h`, `1d`) in minutes."""
    units = {"s": 1 / 60, "m": 1, "h": 60, "d": 1440}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)([smhd])", duration))


def firing_and_resolved() -> dict[str, tuple[list[float], list[float]]]:
    """Per alert, the eval times (minutes) where alerts.test.yml expects it firing / absent."""
    cases: dict[str, tuple[list[float], list[float]]] = {}
    for group in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in group.get("alert_rule_test", []):
            fired, quiet = cases.setdefault(case["alertname"], ([], []))
            (fired if case.get("exp_alerts") else quiet).append(_minutes(case["eval_time"]))
    return cases


def runbook_of(name: str) -> Path:
    return RUNBOOKS / f"{name}.md"


def test_every_alert_has_a_runbook_and_a_firing_test() -> None:
    rules = alert_rules()
    assert len(rules) >= 16
    cases = firing_and_resolved()
    for name, rule in rules.items():
        # one URL form for every rule: the runbook's path in this repository
        assert rule["annotations"].get("runbook_url") == f"docs/runbooks/{name}.md", name
        text = runbook_of(name).read_text(encoding="utf-8")
        assert text.startswith(f"# {name}\n"), name
        positions = [text.find(f"\n{section}\n") for section in SECTIONS]
        assert -1 not in positions and positions == sorted(positions), (name, SECTIONS)
        assert rule["labels"]["severity"] in text.split("\n## ")[0], f"{name}: severity"
        # the person paged gets both doors: the payments CLI and Temporal
        assert re.search(r"^\s*payments \w+", text, re.MULTILINE), f"{name}: no CLI command"
        assert re.search(r"^\s*temporal \w+|Web UI", text, re.MULTILINE), f"{name}: no Temporal"
        # promtool makes it fire, and later sees it resolved
        fired, quiet = cases.get(name, ([], []))
        assert fired, f"{name}: no case in {RULE_TESTS.name} makes it fire"
        assert any(q > min(fired) for q in quiet), f"{name}: no case sees it resolve"


def test_the_index_lists_every_alert_with_its_severity() -> None:
    index = (RUNBOOKS / "alerts.md").read_text(encoding="utf-8")
    for name, rule in alert_rules().items():
        row = f"| {name} | {rule['labels']['severity']} | [{name}.md]({name}.md) |"
        assert row in index, row


def cited_payments_commands(text: str) -> list[str]:
    """`payments …` command lines of a runbook: in code blocks and in inline code."""
    commands: list[str] = []
    language: str | None = None  # inside a fenced block: its language ("" if none)
    prose: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            language = stripped[3:] if language is None else None
        elif language is not None and (language.split() or [""])[0] in ("sh", "bash", ""):
            # `sh phase=recover`: a runbook's executable block (tests/chaos/runbooks.py)
            if stripped.startswith("payments "):
                commands.append(stripped)
        elif language is None:
            prose.append(line)
    # inline code may wrap across lines of prose
    spans = re.findall(r"`(payments [^`]+)`", "\n".join(prose))
    return commands + [" ".join(span.split()) for span in spans]


class _Parsed(Exception):
    """Raised instead of running the command once argparse accepted it."""


def cli_accepts(argv: list[str]) -> bool:
    """Whether `payments <argv>` parses with today's CLI, without running anything."""
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        raise _Parsed(original(self, *args, **kwargs))

    with patch.object(argparse.ArgumentParser, "parse_args", parse_then_stop):
        try:
            ops.cli.main(argv)
        except _Parsed:
            return True
        except SystemExit:
            return False
    return False


def test_runbooks_cite_only_payments_commands_the_cli_has(
    capsys: pytest.CaptureFixture[str],
) -> None:
    checked = 0
    for name in alert_rules():
        for command in cited_payments_commands(runbook_of(name).read_text(encoding="utf-8")):
            argv = shlex.split(command, comments=True)[1:]
            assert cli_accepts(argv), f"{name}.md: `{command}` is not a payments command"
            checked += 1
    capsys.readouterr()
    assert checked >= 30


def test_breach_runbooks_are_indexed_drilled_and_cite_real_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    index = (RUNBOOKS / "breach.md").read_text(encoding="utf-8")
    drills = (PROJECT_ROOT / "tests" / "integration" / "test_breach_runbooks.py").read_text()
    runbooks = sorted(RUNBOOKS.glob("breach-*.md"))
    assert len(runbooks) == 6
    checked = 0
    for path in [RUNBOOKS / "breach.md", *runbooks]:
        text = path.read_text(encoding="utf-8")
        if path.name != "breach.md":
            assert f"]({path.name})" in index, f"breach.md does not list {path.name}"
            # its drill runs its phases: the test names the runbook
            assert re.search(r"^```sh phase=\w+$", text, re.MULTILINE), path.name
            assert f'"{path.name}"' in drills, f"{path.name}: no drill"
        for command in cited_payments_commands(text):
            argv = shlex.split(command, comments=True)[1:]
            assert cli_accepts(argv), f"{path.name}: `{command}` is not a payments command"
            checked += 1
    capsys.readouterr()
    assert checked >= 30


def test_the_command_check_refuses_what_the_cli_lacks(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_accepts(["retry", "pay_x", "--operator", "alice"])
    assert not cli_accepts(["retry", "pay_x", "--force"])
    assert not cli_accepts(["backlog", "drain"])
    assert not cli_accepts(["cancel", "pay_x"])  # --operator is required
    capsys.readouterr()
