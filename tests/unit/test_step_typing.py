"""The step catalogue is typed: mypy refuses a step called with another step's input.

Runs mypy (strict, the project's configuration) on two small workflow snippets: the right
input type checks clean, the wrong one is an `arg-type` error on the call.
"""

from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parents[2]
PRELUDE = """\
from workflows import steps
from workflows.models import KycCheckInput, LedgerInput, LedgerResult


async def hold(ledger: LedgerInput) -> LedgerResult:
    return await steps.HOLD_FUNDS.run(ledger)
"""
WRONG_CALL = """\


async def hold_with_a_kyc_input() -> None:
    await steps.HOLD_FUNDS.run(KycCheckInput("ten_1", "cus_1"))
"""


def mypy_errors(tmp_path: Path, source: str) -> list[str]:
    """mypy's error lines for `source`, checked as a module of this project."""
    snippet = tmp_path / "snippet.py"
    snippet.write_text(source)
    stdout, _, _ = api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            # a private cache: the snippet's module name is the same in every test
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "--no-error-summary",
            str(snippet),
        ]
    )
    return [line for line in stdout.splitlines() if ": error:" in line]


def test_a_step_called_with_its_input_type_checks_clean(tmp_path: Path) -> None:
    assert mypy_errors(tmp_path, PRELUDE) == []


def test_a_step_called_with_another_input_type_is_an_arg_type_error(tmp_path: Path) -> None:
    errors = mypy_errors(tmp_path, PRELUDE + WRONG_CALL)
    assert len(errors) == 1, errors
    wrong_line = (
        (PRELUDE + WRONG_CALL)
        .splitlines()
        .index('    await steps.HOLD_FUNDS.run(KycCheckInput("ten_1", "cus_1"))')
    )
    assert f"snippet.py:{wrong_line + 1}:" in errors[0]
    assert '"KycCheckInput"' in errors[0] and "[arg-type]" in errors[0]
