"""Apply the Alembic migrations programmatically (dev stack, tests, `payments db upgrade`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from kernel.settings import Settings, get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(settings: Settings | None = None) -> Config:
    """Alembic configuration pointing at our migrations and the configured database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", (settings or get_settings()).database.url)
    return cfg


def upgrade(settings: Settings | None = None) -> None:
    """Bring the database schema to the newest revision (idempotent)."""
    command.upgrade(alembic_config(settings), "head")
