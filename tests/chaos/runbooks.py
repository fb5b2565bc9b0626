"""The runbooks' executable steps: each `sh phase=<phase>` fenced block of
docs/runbooks/<name>, its commands in order (the game days and the breach drills run them;
a unit test checks that the runbooks keep theirs), and an operator's shell to run them in."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from kernel.settings import PROJECT_ROOT
from ops.devstack import Stack, settings_env

RUNBOOKS = PROJECT_ROOT / "docs" / "runbooks"
PHASE = re.compile(r"^```sh phase=(?P<phase>\w+)\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)
# a guard, not a timed assertion: how long one runbook command may take before the drill
# is declared stuck
COMMAND_GUARD_SECONDS = 330.0


def runbook_commands(name: str) -> dict[str, list[str]]:
    """The commands of each `sh phase=<phase>` block of docs/runbooks/<name>, in order."""
    phases: dict[str, list[str]] = {}
    for block in PHASE.finditer((RUNBOOKS / name).read_text()):
        lines = [line.strip() for line in block["body"].splitlines()]
        commands = [line for line in lines if line and not line.startswith("#")]
        phases.setdefault(block["phase"], []).extend(commands)
    return phases


def operator_environment(
    stack: Stack, variables: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The operator's shell on `stack`: its settings, the platform's CLIs and PostgreSQL's
    client tools on PATH, Temporal's and PostgreSQL's addresses, and `variables` (the ones
    a runbook asks to set)."""
    settings = stack.settings
    host, port = settings.temporal.address.rsplit(":", 1)
    env = settings_env(settings)
    tools = [str(Path(sys.executable).parent), str(stack.postgres.bin_dir)]
    env.update(
        PATH=os.pathsep.join([*tools, env.get("PATH", "")]),
        API_URL=settings.api.url,
        TEMPORAL_ADDRESS=f"{host}:{port}",
        TEMPORAL_NAMESPACE=settings.temporal.namespace,
        PGHOST="127.0.0.1",
        PGPORT=str(settings.database.embedded_port),
        USER="gameday",
    )
    env.update(variables or {})
    return env


async def run_command(command: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one runbook command in bash (pipefail), off the event loop."""
    return await asyncio.to_thread(
        subprocess.run,
        ["bash", "-o", "pipefail", "-c", command],
        env=dict(env),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=COMMAND_GUARD_SECONDS,
        check=False,
    )
