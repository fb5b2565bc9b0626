"""A worker without readable watch lists refuses to start, saying which setting to fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ops.devstack import Stack, settings_env


def _start_worker(database: Stack, sanctions_dir: str) -> subprocess.CompletedProcess[str]:
    settings = database.settings.updated({"lists.sanctions_dir": sanctions_dir})
    return subprocess.run(
        [sys.executable, "-m", "workers"],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_missing_sanctions_list_stops_the_worker_with_one_line(
    database: Stack, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-list"
    finished = _start_worker(database, str(missing))
    assert finished.returncode != 0
    assert "Traceback" not in finished.stderr
    lines = [line for line in finished.stderr.splitlines() if "watch lists" in line]
    assert len(lines) == 1, finished.stderr
    assert "PAYMENTS_SANCTIONS_DIR" in lines[0]
    assert str(missing) in lines[0]


def test_an_unreadable_sanctions_file_stops_the_worker(database: Stack, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "sdn.csv").write_bytes(b"\xff\xfe not a list")
    finished = _start_worker(database, str(broken))
    assert finished.returncode != 0
    assert "Traceback" not in finished.stderr
    assert "PAYMENTS_SANCTIONS_DIR" in finished.stderr
