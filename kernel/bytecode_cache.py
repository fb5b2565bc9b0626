"""Keep compiled bytecode for worker processes even where PYTHONDONTWRITEBYTECODE is set.

Temporal's workflow sandbox imports a workflow's module afresh for every workflow run. With
no bytecode on disk (our image and dev shells set PYTHONDONTWRITEBYTECODE, to keep `.pyc`
files out of the source tree and the image), every payment recompiled `workflows/payment.py`
from source: about 5% of the worker's CPU under load (see docs/performance.md). Writing the
bytecode under the data directory instead keeps the source tree clean and compiles once.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from types import CodeType
from typing import Any


def cache_bytecode_under(data_dir: Path) -> None:
    """Write and read this process's bytecode under `data_dir/pycache` (if not already on)."""
    if not sys.dont_write_bytecode or sys.pycache_prefix is not None:
        return  # bytecode is written next to the sources, or somewhere chosen already
    prefix = data_dir / "pycache"
    try:
        prefix.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # a read-only data directory: compile every time, as before
    sys.pycache_prefix = str(prefix)
    sys.dont_write_bytecode = False


# The SDK release whose sandbox `compile_sandbox_code_once` was checked against: its
# `_Instance._run_code(code: str, ...)` ends in `exec(code, globals, globals)`.
SANDBOX_CHECKED_VERSION = "1.35.0"


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> CodeType:
    return compile(source, "<string>", "exec")


def compile_sandbox_code_once() -> bool:
    """Have Temporal's workflow sandbox compile each of its small code strings once per process.

    The sandbox runs every activation, and every payload sequence's serialization context
    (asked for each conversion when a payload codec is configured), by `exec`-ing a source
    string: Python compiled it every time (~6% of the worker's CPU in a py-spy profile; see
    docs/performance.md). The strings are a handful of constants, so their code objects are
    kept; `exec` of a code object does exactly what `exec` of its source does. Applied only
    to the SDK release it was checked against (returns False otherwise, changing nothing).
    """
    import temporalio
    from temporalio.worker.workflow_sandbox import _runner

    instance: Any = _runner._Instance
    if getattr(instance._run_code, "compiles_once", False):
        return True
    if temporalio.__version__ != SANDBOX_CHECKED_VERSION:
        return False
    original = instance._run_code

    def run_code(self: Any, code: str, **extra_globals: Any) -> None:
        original(self, _compiled(code), **extra_globals)

    run_code.compiles_once = True  # type: ignore[attr-defined]
    instance._run_code = run_code
    return True
