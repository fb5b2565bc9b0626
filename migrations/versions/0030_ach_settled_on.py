"""ACH entries remember the bank's settlement date (reconciliation by value date).

- `ach_entries.settled_on`: the settlement date of the bank's notice for the entry's file
  (NULL until it arrives, and for entries settled before this migration). Reconciliation
  books an ACH payment's post, and an accepted reversal's return, on this date: the bank's
  statement lists them on it, and the day our ledger posted may be another one (a notice
  that arrives after midnight, a bank whose clock runs ahead of ours).
- A partial index serves "the entries the bank settled on a day"; a nullable column with no
  default rewrites no row.

Revision ID: 0030
Revises: 0028
Create Date: 2026-12-07
"""

from alembic import op

revision = "0030"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE ach_entries ADD COLUMN settled_on date")
    op.execute(
        "CREATE INDEX ach_entries_settled_on_idx ON ach_entries (settled_on)"
        " WHERE settled_on IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ach_entries_settled_on_idx")
    op.execute("ALTER TABLE ach_entries DROP COLUMN settled_on")
