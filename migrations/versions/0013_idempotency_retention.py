"""Idempotency records expire (issue #23): an index on their creation time.

`payments purge` deletes records older than `PAYMENTS_IDEMPOTENCY_RETENTION_SECONDS` in
bounded batches, oldest first; this index lets each batch read just the rows it deletes
instead of scanning the table. Built CONCURRENTLY outside the migration transaction, like
0009 (see there why, and why the index is dropped first).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

INDEXES = {"idempotency_keys_created_idx": "idempotency_keys (created_at)"}


def upgrade() -> None:
    """Build the index without blocking writes."""
    with op.get_context().autocommit_block():
        for name, definition in INDEXES.items():
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"CREATE INDEX CONCURRENTLY {name} ON {definition}")


def downgrade() -> None:
    """Drop it."""
    with op.get_context().autocommit_block():
        for name in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
