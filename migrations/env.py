"""Alembic environment: runs migrations against `Settings.database_url` (sync psycopg)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from kernel.settings import get_settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or get_settings().database.url
# migrations move personal data too: their parameters stay out of logs (kernel/db.py)
engine = create_engine(url, poolclass=pool.NullPool, hide_parameters=True)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
