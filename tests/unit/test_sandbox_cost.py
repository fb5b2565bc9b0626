"""What the workflow sandbox does per payment run: it re-imports the payment module (by
design), but neither the step catalogue nor its own code strings' compilation again."""

from __future__ import annotations

import json
import subprocess
import sys

from kernel.settings import PROJECT_ROOT

# a process of its own: the audit hook and the SDK patch stay out of the test session
SCRIPT = """
import asyncio, json, sys
from temporalio import workflow
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from kernel.bytecode_cache import _compiled, compile_sandbox_code_once
import workflows.steps  # the worker's host process has the catalogue (activity registry)
from workflows.payment import PaymentWorkflow

executed = []
sys.addaudithook(
    lambda event, args: event == "exec" and executed.append(getattr(args[0], "co_filename", ""))
)
patched = compile_sandbox_code_once() if sys.argv[1] == "patch" else False
runner = SandboxedWorkflowRunner()
defn = workflow._Definition.must_from_class(PaymentWorkflow)
async def three_runs():  # an instance needs a running loop, as in a worker
    for _ in range(3):
        runner.prepare_workflow(defn)
asyncio.run(three_runs())
print(json.dumps({
    "patched": patched,
    "payment": sum(name.endswith("workflows/payment.py") for name in executed),
    "steps": sum(name.endswith("workflows/steps.py") for name in executed),
    "compiled": _compiled.cache_info().currsize,
}))
"""


def sandbox_runs(mode: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        check=True,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_payment_run_reimports_its_workflow_module_but_not_the_step_catalogue() -> None:
    runs = sandbox_runs("plain")

    assert runs["payment"] == 3  # the sandbox isolates each run's workflow module
    assert runs["steps"] == 0


def test_the_sandbox_compiles_each_of_its_code_strings_once_per_process() -> None:
    runs = sandbox_runs("patch")

    assert runs["patched"] is True
    # three instance creations ran the same two strings (import the workflow, build the
    # instance): two code objects, compiled once each
    assert runs["compiled"] == 2
