"""Schemathesis against the live API: no 5xx, and every response matches the OpenAPI contract.

Driven operation by operation with Hypothesis directly (schemathesis's pytest plugin does
not support this pytest version).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ops.devstack import Stack, settings_env

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    status_code_conformance,
]


def fuzz_key(stack: Stack) -> str:
    """A key with every scope and a rate limit the fuzzer will not hit."""
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "payments"),
            "keys",
            "create",
            "--tenant",
            "ten_fuzz",
            "--name",
            "fuzzer",
            "--scopes",
            "payments:read,payments:write,ops",
            "--rate-limit",
            "100000",
        ],
        env=settings_env(stack.settings),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_no_server_errors_and_responses_keep_the_contract(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {fuzz_key(stack)}"}
    schema = schemathesis.openapi.from_url(f"{stack.settings.api_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 15, [op.label for op in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        exercise()
