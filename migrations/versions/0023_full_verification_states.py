"""The full verification's start cut, per run (issue #23).

`ledger_full_verified_accounts`: every account's version and four balances when a full
verification (the FullVerification workflow) started, in one snapshot, keyed by the run. Its
chunks verify each account's entries up to at least that version and that the entry at that
version has those balances. When every chunk passed, the run's checkpoint makes this cut the
accounts' verified state (`ledger_verified_accounts`, never replacing a newer one), where the
incremental check continues from, and deletes it; a run that found a problem deletes it
without a checkpoint. A cut of one snapshot, not the states each chunk saw: those come from
different snapshots and would split a transfer written meanwhile between verified and new.

Revision ID: 0023
Revises: 0020
Create Date: 2026-12-07
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the table."""
    op.execute(
        """
CREATE TABLE ledger_full_verified_accounts (
    run_key          text NOT NULL,
    account_id       text NOT NULL,
    version          bigint NOT NULL,
    debits_pending   bigint NOT NULL,
    debits_posted    bigint NOT NULL,
    credits_pending  bigint NOT NULL,
    credits_posted   bigint NOT NULL,
    PRIMARY KEY (run_key, account_id)
);
"""
    )


def downgrade() -> None:
    """Drop it."""
    op.execute("DROP TABLE ledger_full_verified_accounts")
