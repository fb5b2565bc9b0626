"""The runbooks' executable steps: each `sh phase=<phase>` fenced block of
docs/runbooks/<name>, its commands in order (the game days run them; a unit test checks
that the outage runbooks keep theirs)."""

from __future__ import annotations

import re

from kernel.settings import PROJECT_ROOT

RUNBOOKS = PROJECT_ROOT / "docs" / "runbooks"
PHASE = re.compile(r"^```sh phase=(?P<phase>\w+)\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)


def runbook_commands(name: str) -> dict[str, list[str]]:
    """The commands of each `sh phase=<phase>` block of docs/runbooks/<name>, in order."""
    phases: dict[str, list[str]] = {}
    for block in PHASE.finditer((RUNBOOKS / name).read_text()):
        lines = [line.strip() for line in block["body"].splitlines()]
        commands = [line for line in lines if line and not line.startswith("#")]
        phases.setdefault(block["phase"], []).extend(commands)
    return phases
