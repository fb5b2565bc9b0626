"""The bank's callbacks already acted on (issue #16): `rail_callback_receipts`.

A small table of event ids kept for twice the signature tolerance window, so a replayed
callback is recognised; an index on `received_at` keeps the purge a range scan.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the table."""
    op.execute(
        "CREATE TABLE rail_callback_receipts ("
        " event_id text PRIMARY KEY, received_at timestamptz NOT NULL)"
    )
    op.execute(
        "CREATE INDEX rail_callback_receipts_received_at ON rail_callback_receipts (received_at)"
    )


def downgrade() -> None:
    """Drop it."""
    op.execute("DROP TABLE rail_callback_receipts")
