"""Deposits: exactly once, four-eyes review above a threshold, and reconciliation.

A deposit now has a `status`: `credited` (the ledger credit committed with the row),
`pending_review` (above `PAYMENTS_DEPOSIT_REVIEW_THRESHOLD`: nothing credited until a second
ops principal approves) or `rejected` (nothing ever credited). `credited_at` dates the
ledger credit, which is what reconciliation matches against the bank statement's incoming
credit of that day; `bank_reference` is the reference the bank booked that credit under.

A bank reference names one incoming credit, so at most one live (not rejected) deposit may
carry it per currency: two deposits claiming one credit would credit its money twice.

Existing deposits were credited when they were made.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE deposits
    ADD COLUMN status text NOT NULL DEFAULT 'credited'
        CHECK (status IN ('credited', 'pending_review', 'rejected')),
    ADD COLUMN bank_reference text,
    ADD COLUMN created_by_key_id text,
    ADD COLUMN credited_at timestamptz,
    ADD COLUMN reviewed_by text,
    ADD COLUMN review_note text,
    ADD COLUMN reviewed_at timestamptz;
UPDATE deposits SET credited_at = created_at;
ALTER TABLE deposits
    ADD CONSTRAINT deposits_credited_at CHECK ((status = 'credited') = (credited_at IS NOT NULL));
CREATE UNIQUE INDEX deposits_bank_reference ON deposits (currency, bank_reference)
    WHERE bank_reference IS NOT NULL AND status <> 'rejected';
-- GET /v1/deposits (newest first, by status: those waiting for review)
CREATE INDEX deposits_tenant_created_idx ON deposits (tenant_id, created_at DESC, id DESC);
CREATE INDEX deposits_tenant_status_created_idx
    ON deposits (tenant_id, status, created_at DESC, id DESC);
-- reconciliation reads one day's credited deposits of one currency
CREATE INDEX deposits_credited ON deposits (currency, credited_at) WHERE status = 'credited';
ALTER TABLE reconciliation_discrepancies ADD COLUMN deposit_id text;
"""

DOWNGRADE = """
ALTER TABLE reconciliation_discrepancies DROP COLUMN deposit_id;
DROP INDEX deposits_credited;
DROP INDEX deposits_tenant_status_created_idx;
DROP INDEX deposits_tenant_created_idx;
DROP INDEX deposits_bank_reference;
ALTER TABLE deposits
    DROP CONSTRAINT deposits_credited_at,
    DROP COLUMN reviewed_at,
    DROP COLUMN review_note,
    DROP COLUMN reviewed_by,
    DROP COLUMN credited_at,
    DROP COLUMN created_by_key_id,
    DROP COLUMN bank_reference,
    DROP COLUMN status;
"""


def upgrade() -> None:
    """Apply."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Revert."""
    op.execute(DOWNGRADE)
