"""Alembic migrations: the authoritative database schema."""
