"""Recalls of settled payments (issue #18 item 1).

- `payments.recall`: nullable JSONB with no default (no table rewrite): `{status, reason,
  note, requested_at, answered_at, answer_reason}` once the sender asked for the money back.
- `ach_entries.payment_id` may also name an ACH reversal, `recall-<payment id>`: the owner
  trigger accepts it when the payment exists.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""

from alembic import op

revision = "0028"
down_revision = "0029"
branch_labels = None
depends_on = None

_OWNER_CHECK = """
CREATE OR REPLACE FUNCTION ach_entry_owner_exists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM payments WHERE id = NEW.payment_id)
       AND NOT EXISTS (SELECT 1 FROM counterparties WHERE id = NEW.payment_id)
       {reversal} THEN
        RAISE EXCEPTION 'ACH entry % names no payment or counterparty', NEW.payment_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END $$;
"""
_REVERSAL = (
    "AND NOT EXISTS (SELECT 1 FROM payments WHERE id = substr(NEW.payment_id, 8)"
    " AND NEW.payment_id LIKE 'recall-%')"
)


def upgrade() -> None:
    """Add the column; let a reversal own an ACH entry."""
    op.execute("ALTER TABLE payments ADD COLUMN recall jsonb")
    op.execute(_OWNER_CHECK.format(reversal=_REVERSAL))


def downgrade() -> None:
    """Drop them."""
    op.execute("DELETE FROM ach_entries WHERE payment_id LIKE 'recall-%'")
    op.execute(_OWNER_CHECK.format(reversal=""))
    op.execute("ALTER TABLE payments DROP COLUMN recall")
