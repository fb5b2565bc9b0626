"""Ledger: apply a batch in memory with set-based reads and writes (same semantics as 0002).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from pathlib import Path

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parents[2] / "ledger" / "sql"


def upgrade() -> None:
    """Replace the batch function and the account-entry check."""
    op.execute((SQL_DIR / "0003_functions.sql").read_text())
    op.execute("DROP FUNCTION ledger_apply_transfer(jsonb, timestamptz)")
    op.execute("DROP FUNCTION ledger_remember_failure(text, text)")


def downgrade() -> None:
    """Back to the 0002 functions."""
    op.execute("DROP FUNCTION ledger_create_transfers(jsonb, timestamptz)")
    op.execute("DROP FUNCTION ledger_expire_pending(timestamptz)")
    op.execute("DROP FUNCTION ledger_post_legs(text, text, text, bigint, bigint, bigint, bigint)")
    op.execute((SQL_DIR / "0002_functions.sql").read_text())
