"""Why a payment waits for ops (issue #15): `payments.action_reason`.

`outcome_unknown` (the bank's answer was lost and it could not be asked), `rail_unreachable`
(the bank confirmed it has no record) or `ledger_out_of_sync` (the bank paid, the ledger
refused the post); NULL in every other status. A nullable column without a default: adding
it rewrites nothing, so it takes a moment on any size of table.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column."""
    op.execute("ALTER TABLE payments ADD COLUMN action_reason text")


def downgrade() -> None:
    """Drop it."""
    op.execute("ALTER TABLE payments DROP COLUMN action_reason")
