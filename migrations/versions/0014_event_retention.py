"""Events and their webhook deliveries expire (issue #23): an index on events' creation time.

`payments purge` deletes events older than `PAYMENTS_EVENT_RETENTION_SECONDS` (with their
deliveries, found by the deliveries' primary key, which the event id leads) in bounded
batches, oldest first. The existing `events_tenant_idx` leads with the tenant and cannot
serve a cut-off across tenants; this index can. Built CONCURRENTLY outside the migration
transaction, like 0009.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

INDEXES = {"events_created_idx": "events (created_at)"}


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
