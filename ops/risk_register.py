"""The risk register: `docs/risk-register.yaml` in, `docs/risk-register.md` out.

The YAML file is the one kept by hand; the Markdown page is generated from it
(`make risk-register`) so the two never disagree. A risk names the control that keeps it
in check and the pytest node ids of the tests that prove that control. A register is
honest when every control it calls built names at least one test and every test id it
names exists; a risk whose control is not built yet is `open` and names the issue that
builds it. `tests/unit/test_risk_register.py` holds the register to that, and to the page
being current.

Test ids are read from the test files with `ast` (module-level `test*` functions and
`test*` methods of `Test*` classes), not by pytest's collection: collecting the whole suite
imports every test module and its fixtures, which costs seconds and needs the full stack's
packages; the register only needs to know that a name is there.

    python -m ops.risk_register           # write docs/risk-register.md
    python -m ops.risk_register --check   # exit 1 if the register is dishonest or the page stale
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import yaml  # type: ignore[import-untyped,unused-ignore]

ROOT = Path(__file__).resolve().parents[1]
REGISTER = ROOT / "docs" / "risk-register.yaml"
PAGE = ROOT / "docs" / "risk-register.md"
TESTS = ROOT / "tests"

CATEGORIES = ("financial", "compliance", "security", "operational")
LIKELIHOODS = ("low", "medium", "high")
IMPACTS = ("low", "medium", "high", "severe")
STATUSES = ("controlled", "open")
FIELDS = {
    "id",
    "title",
    "category",
    "likelihood",
    "impact",
    "risk",
    "control",
    "status",
    "issue",
    "tests",
}


@dataclass(frozen=True)
class Risk:
    """One line of the register."""

    id: str
    title: str
    category: str
    likelihood: str
    impact: str
    risk: str
    control: str
    status: str
    issue: int | None = None
    tests: tuple[str, ...] = field(default_factory=tuple)


class RegisterError(ValueError):
    """The YAML file is not a register (a missing field, a value outside its scale)."""


def load(path: Path = REGISTER) -> list[Risk]:
    """Read and validate the shape of the register (not yet its tests: see `problems`)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or not isinstance(document.get("risks"), list):
        raise RegisterError(f"{path}: expected a mapping with a `risks` list")
    return [_risk(entry, path) for entry in document["risks"]]


def _risk(entry: Any, path: Path) -> Risk:
    if not isinstance(entry, dict):
        raise RegisterError(f"{path}: every risk is a mapping, got {entry!r}")
    name = entry.get("id", "?")
    unknown = set(entry) - FIELDS
    if unknown:
        raise RegisterError(f"{path}: {name}: unknown fields {sorted(unknown)}")
    for key in ("id", "title", "category", "likelihood", "impact", "risk", "control", "status"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise RegisterError(f"{path}: {name}: `{key}` must be a non-empty string")
    for key, scale in (
        ("category", CATEGORIES),
        ("likelihood", LIKELIHOODS),
        ("impact", IMPACTS),
        ("status", STATUSES),
    ):
        if entry[key] not in scale:
            raise RegisterError(f"{path}: {name}: `{key}` is one of {scale}, not {entry[key]!r}")
    issue = entry.get("issue")
    if issue is not None and (not isinstance(issue, int) or isinstance(issue, bool)):
        raise RegisterError(f"{path}: {name}: `issue` is an issue number")
    tests = entry.get("tests") or []
    if not isinstance(tests, list) or not all(isinstance(t, str) for t in tests):
        raise RegisterError(f"{path}: {name}: `tests` is a list of pytest node ids")
    return Risk(
        id=entry["id"],
        title=" ".join(entry["title"].split()),
        category=entry["category"],
        likelihood=entry["likelihood"],
        impact=entry["impact"],
        risk=" ".join(entry["risk"].split()),
        control=" ".join(entry["control"].split()),
        status=entry["status"],
        issue=issue,
        tests=tuple(tests),
    )


def collect_test_ids(tests_dir: Path = TESTS) -> set[str]:
    """Node ids (`tests/x/test_y.py::test_z`, `…::TestC::test_m`) of every test file."""
    ids: set[str] = set()
    root = tests_dir.parent
    for path in sorted(tests_dir.rglob("test_*.py")):
        module = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        prefix = path.relative_to(root).as_posix()
        for node in module.body:
            if _is_test_function(node):
                ids.add(f"{prefix}::{node.name}")
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                for member in node.body:
                    if _is_test_function(member):
                        ids.add(f"{prefix}::{node.name}::{member.name}")
    return ids


def _is_test_function(node: ast.stmt) -> TypeGuard[ast.FunctionDef | ast.AsyncFunctionDef]:
    return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")


def _base_id(test_id: str) -> str:
    # a parametrized case (`…::test_x[sepa]`) is proved by its function existing
    return test_id.split("[", 1)[0]


def problems(risks: Iterable[Risk], test_ids: set[str]) -> list[str]:
    """Every way the register is dishonest, one line each (empty: it is honest)."""
    found: list[str] = []
    seen: set[str] = set()
    for risk in risks:
        if risk.id in seen:
            found.append(f"{risk.id}: the id is used twice")
        seen.add(risk.id)
        if risk.status == "controlled" and not risk.tests:
            found.append(
                f"{risk.id}: its control names no test; name the tests that prove it, "
                "or mark the risk open with the issue that builds the control"
            )
        if risk.status == "open" and risk.issue is None:
            found.append(f"{risk.id}: an open risk names the issue that builds its control")
        for test_id in risk.tests:
            if _base_id(test_id) not in test_ids:
                found.append(f"{risk.id}: names {test_id}, which is no test in tests/")
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(risks: list[Risk]) -> str:
    """The Markdown page: a summary table, then each risk with its control and tests."""
    by_category = Counter(r.category for r in risks)
    by_status = Counter(r.status for r in risks)
    lines = [
        "# Risk register",
        "",
        "<!-- generated by `make risk-register` from docs/risk-register.yaml: edit that file -->",
        "",
        "What can go wrong on the platform, how likely it is before the control acts, what it",
        "would cost, the control that keeps it in check, and the tests that prove the control.",
        "`tests/unit/test_risk_register.py` fails when a control names no test, when a test id",
        "names no test, or when this page is older than the YAML file. A risk whose control is",
        "not built yet is **open** and names the issue that builds it.",
        "",
        "Likelihood: low / medium / high. Impact: low / medium / high / severe (money lost or",
        "paid twice, a sanctions breach, personal data exposed).",
        "",
        f"**{len(risks)} risks**: "
        + ", ".join(f"{by_category[c]} {c}" for c in CATEGORIES)
        + f"; {by_status['controlled']} controlled, {by_status['open']} open.",
        "",
        "| id | risk | category | likelihood | impact | status | tests |",
        "|---|---|---|---|---|---|---|",
    ]
    for risk in risks:
        status = risk.status if risk.issue is None else f"{risk.status} (#{risk.issue})"
        lines.append(
            f"| [{risk.id}](#{risk.id.lower()}) | {_cell(risk.title)} | {risk.category} "
            f"| {risk.likelihood} | {risk.impact} | {status} | {len(risk.tests)} |"
        )
    for risk in risks:
        lines += [
            "",
            f"## {risk.id}",
            "",
            f"**{_cell(risk.title)}** ({risk.category}; likelihood {risk.likelihood}, "
            f"impact {risk.impact}; {risk.status}"
            + (f", issue #{risk.issue}" if risk.issue is not None else "")
            + ")",
            "",
            f"- **Risk:** {risk.risk}",
            f"- **Control:** {risk.control}",
        ]
        if risk.tests:
            lines.append("- **Proved by:**")
            lines += [f"  - `{test_id}`" for test_id in risk.tests]
        else:
            lines.append(f"- **Proved by:** nothing yet: the control is issue #{risk.issue}.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the page, or with `--check` report what is dishonest or stale."""
    parser = argparse.ArgumentParser(prog="python -m ops.risk_register", description=__doc__)
    parser.add_argument("--check", action="store_true", help="check only, write nothing")
    args = parser.parse_args(argv)
    risks = load()
    found = problems(risks, collect_test_ids())
    for line in found:
        print(f"risk register: {line}", file=sys.stderr)
    page = render(risks)
    if args.check:
        if not PAGE.is_file() or PAGE.read_text(encoding="utf-8") != page:
            print(f"risk register: {PAGE.name} is stale: run `make risk-register`", file=sys.stderr)
            return 1
    else:
        PAGE.write_text(page, encoding="utf-8")
        print(f"wrote {PAGE.relative_to(ROOT)}: {len(risks)} risks")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
