"""Worker processes keep bytecode under the data directory, never in the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kernel.settings import PROJECT_ROOT

SCRIPT = """
import sys
sys.path.insert(0, sys.argv[2])
from kernel.bytecode_cache import cache_bytecode_under
from pathlib import Path
cache_bytecode_under(Path(sys.argv[1]))
import tiny_module
"""


def run_with(tmp_path: Path, env_flag: str | None) -> tuple[Path, Path]:
    sources = tmp_path / "src"
    sources.mkdir()
    (sources / "tiny_module.py").write_text("VALUE = 1\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if env_flag is not None:
        env["PYTHONDONTWRITEBYTECODE"] = env_flag
    data = tmp_path / "data"
    subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data), str(sources)],
        check=True,
        env=env,
        cwd=PROJECT_ROOT,
    )
    return sources, data


def test_bytecode_goes_under_the_data_directory_when_the_tree_must_stay_clean(
    tmp_path: Path,
) -> None:
    sources, data = run_with(tmp_path, "1")

    assert list(data.rglob("tiny_module*.pyc")), "no bytecode under the data directory"
    assert not list(sources.rglob("*.pyc"))


def test_bytecode_placement_is_left_alone_when_python_writes_it_anyway(tmp_path: Path) -> None:
    sources, data = run_with(tmp_path, None)

    assert list(sources.rglob("tiny_module*.pyc"))
    assert not data.exists()
