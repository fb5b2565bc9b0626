"""The full verification's verified account states, per run (issue #23).

`ledger_full_verified_accounts`: each account's version and four balances as a chunk of a
full verification (the FullVerification workflow) verified them, in that chunk's snapshot,
keyed by the run. When every chunk passed, the run's checkpoint makes them the accounts'
verified state (`ledger_verified_accounts`, never replacing a newer one) and deletes them; a
run that found a problem deletes them without a checkpoint. The chunks verify the accounts
in snapshots of their own, so only the state each one saw may be called verified: not the
accounts' state when the run ends.

Revision ID: 0023
Revises: 0020
Create Date: 2026-12-07
"""

from alembic import op

revision = "0023"
down_revision = "0020"
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
