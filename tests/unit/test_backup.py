"""`payments backup` input that cannot be acted on is refused and changes nothing."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ops.backup import BackupError, Backups
from ops.cli import main
from ops.embedded_pg import EmbeddedPostgres


def test_a_restore_with_no_base_backup_before_the_target_leaves_the_database_alone() -> None:
    root = Path(tempfile.mkdtemp(prefix="backup-unit-"))
    pgdata = root / "postgres"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("18\n")
    backups = Backups(root / "backups", EmbeddedPostgres(pgdata, 1))
    with pytest.raises(BackupError, match="no base backup finished before"):
        backups.restore(datetime(2020, 1, 1, tzinfo=UTC))
    assert (pgdata / "PG_VERSION").read_text() == "18\n"
    assert sorted(p.name for p in root.iterdir()) == ["backups", "postgres"]
    shutil.rmtree(root)


@pytest.mark.parametrize(
    "argv", [["backup", "restore", "--to", "yesterday"], ["heal", "--since", "now"]]
)
def test_a_time_that_is_not_iso_8601_is_refused_before_anything_runs(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "not an ISO 8601 time" in capsys.readouterr().err


def test_backup_refuses_outside_dev(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In production the database platform restores; the command touches nothing."""
    from kernel.settings import get_settings

    monkeypatch.setenv("PAYMENTS_ENV", "production")
    get_settings.cache_clear()
    try:
        assert main(["backup", "list"]) == 2
    finally:
        get_settings.cache_clear()
    assert "database platform's PITR" in capsys.readouterr().err
