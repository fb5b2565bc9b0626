"""Settings in sections: every variable reaches one setting, a child process reads exactly
the parent's settings, and a change names a setting that exists."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import pytest

from kernel.settings import PROJECT_ROOT, Settings, describe, setting_paths
from ops.devstack import isolated_settings, settings_env


def test_every_variable_names_one_setting_of_one_section() -> None:
    paths = setting_paths()
    sections = Settings().sections()
    fields = sum(len(type(section).model_fields) for section in sections.values())
    # env and data_dir, then one variable per field: no two fields share a variable
    assert len(paths) == fields + 2
    assert len(set(paths.values())) == len(paths)
    assert all(name.startswith("PAYMENTS_") for name in paths)


def test_variables_kept_their_names_and_reach_their_sections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a variable named before the sections existed, and one named by its section's prefix
    monkeypatch.setenv("PAYMENTS_POSTGRES_PORT", "6543")
    monkeypatch.setenv("PAYMENTS_API_PORT", "8081")
    monkeypatch.setenv("PAYMENTS_RAIL_BANK_URL", "https://bank.example")
    settings = Settings()
    assert settings.database.embedded_port == 6543
    assert settings.api.port == 8081
    assert settings.api.url.endswith(":8081")
    assert settings.rails.bank_url == "https://bank.example"


def test_a_child_process_reads_exactly_the_parents_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = isolated_settings(tmp_path, {"ach.window_seconds": 3.5, "limits.daily_count_low": 7})
    for variable, value in settings_env(parent).items():
        if variable.startswith("PAYMENTS_"):
            monkeypatch.setenv(variable, value)
    child = Settings()
    assert child == parent
    assert child.ach.window_seconds == 3.5
    assert child.limits.daily_count_low == 7


def test_a_change_is_validated_and_names_an_existing_setting(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path)
    changed = settings.updated({"api.port": "9001", "env": "production"})
    assert changed.api.port == 9001
    assert changed.env == "production"
    # the original is untouched, and so is every other section
    assert settings.api.port != 9001
    assert changed.ach == settings.ach
    for misspelled in ("api.prot", "apii.port", "api_port"):
        with pytest.raises(KeyError):
            settings.updated({misspelled: 1})
    with pytest.raises(ValueError, match="port"):
        settings.updated({"api.port": "not a port"})
    # a setting given by its pre-section name is refused, not silently ignored
    with pytest.raises(TypeError, match="api_port"):
        Settings(**cast(dict[str, Any], {"api_port": 9001}))


def test_payments_settings_never_prints_a_secret(tmp_path: Path) -> None:
    settings = isolated_settings(
        tmp_path,
        {
            "rails.callback_secret": "s3cr3t-from-the-vault-0123456789abcdef",
            "database.url": "postgresql+psycopg://app:hunter2@db/payments",
        },
    )
    shown = {path: value for _, path, value in describe(settings)}
    assert shown["rails.callback_secret"] == "<set>"
    assert shown["database.url"] == "<set>"
    assert shown["codec.payload_keys"] == "<set>"
    printed = " ".join(shown.values())
    assert "hunter2" not in printed and "vault" not in printed
    assert shown["api.port"] == str(settings.api.port)


def test_the_readme_names_only_variables_that_exist() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    named = set(re.findall(r"`(PAYMENTS_[A-Z0-9_]*[A-Z0-9])`", readme))
    assert named, "the README's configuration table names variables"
    assert named - set(setting_paths()) == set()
