"""Keep compiled bytecode for worker processes even where PYTHONDONTWRITEBYTECODE is set.

Temporal's workflow sandbox imports a workflow's module afresh for every workflow run. With
no bytecode on disk (our image and dev shells set PYTHONDONTWRITEBYTECODE, to keep `.pyc`
files out of the source tree and the image), every payment recompiled `workflows/payment.py`
from source: about 5% of the worker's CPU under load (see docs/performance.md). Writing the
bytecode under the data directory instead keeps the source tree clean and compiles once.
"""

from __future__ import annotations

import sys
from pathlib import Path


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
