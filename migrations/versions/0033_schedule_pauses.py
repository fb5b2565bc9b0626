"""Payment schedules remember when they were paused.

- `payment_schedules.paused_periods`: `[{"from": ISO 8601, "until": ISO 8601 | null}, …]`,
  one entry per pause, closed by the resume. A run whose nominal time falls in one of them
  is no run of the schedule (Temporal takes no action while a Schedule is paused), so one
  started straight through Temporal for such a time, past the rule check, pays nothing.
- A constant default: PostgreSQL adds the column without rewriting a row.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-08
"""

from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE payment_schedules ADD COLUMN paused_periods jsonb NOT NULL DEFAULT '[]'"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE payment_schedules DROP COLUMN paused_periods")
