"""Ledger fast path: statement-level integrity checks and a single-event function.

Same rules and the same database-enforced guarantees, at a fraction of the cost per transfer
(ledger/sql/0006_functions.sql says what changes and why each guarantee still holds):
- the per-row deferred checks on accounts and transfers become statement-level checks over
  transition tables, plus a new one on entries that makes the entries' foreign keys redundant;
- `ledger_create_transfer` applies a batch of one from typed arguments;
- the batch function and expiry write transfers and entries in one statement.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from pathlib import Path

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parents[2] / "ledger" / "sql"

# the 0002 per-row check on accounts (its function comes back with 0003_functions.sql)
ACCOUNT_ROW_CHECK = """
CREATE CONSTRAINT TRIGGER ledger_accounts_change_has_entry
    AFTER UPDATE ON ledger_accounts DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_account_entry();
"""


def upgrade() -> None:
    """Swap the checks and install the functions."""
    op.execute((SQL_DIR / "0006_functions.sql").read_text())


def downgrade() -> None:
    """Back to the 0003 functions and the 0002 per-row checks."""
    op.execute((SQL_DIR / "0006_downgrade.sql").read_text())
    op.execute((SQL_DIR / "0003_functions.sql").read_text())
    op.execute(ACCOUNT_ROW_CHECK)
