"""Customer onboarding as a workflow, and versioned watch lists.

Customers start `pending` (the onboarding workflow decides), keep who created them (four-eyes
on their review), the reviewer's decision, their latest screening (hits, list versions) and a
flag for hits that a list update brought. `watch_list_versions` records every list version
the platform adopted; a list's current version is its newest row.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE customers DROP CONSTRAINT customers_kyc_status_check;
ALTER TABLE customers ADD CONSTRAINT customers_kyc_status_check
    CHECK (kyc_status IN ('pending', 'approved', 'in_review', 'rejected'));
ALTER TABLE customers
    ADD COLUMN tax_id                   text,
    ADD COLUMN created_by               text,
    ADD COLUMN kyc_notes                jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN kyc_decided_at           timestamptz,
    ADD COLUMN kyc_decided_by           text,
    ADD COLUMN kyc_review_note          text,
    ADD COLUMN screening_hits           jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN screening_list_versions  jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN screened_at              timestamptz,
    ADD COLUMN watchlist_flagged_at     timestamptz;
CREATE INDEX customers_watchlist_flagged_idx ON customers (tenant_id, watchlist_flagged_at)
    WHERE watchlist_flagged_at IS NOT NULL;

CREATE TABLE watch_list_versions (
    id           bigserial PRIMARY KEY,
    list_name    text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('sanctions', 'pep')),
    version      text NOT NULL,
    source       text NOT NULL,
    entities     integer NOT NULL CHECK (entities >= 0),
    -- the refresh (workflow run) that recorded it: a retried refresh finds its own rows
    refresh_id   text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX watch_list_versions_current_idx ON watch_list_versions (list_name, id DESC);
CREATE INDEX watch_list_versions_refresh_idx ON watch_list_versions (refresh_id);
CREATE TRIGGER watch_list_versions_append_only BEFORE UPDATE OR DELETE ON watch_list_versions
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
"""

DOWNGRADE = """
DROP TABLE watch_list_versions;
DROP INDEX customers_watchlist_flagged_idx;
ALTER TABLE customers
    DROP COLUMN tax_id,
    DROP COLUMN created_by,
    DROP COLUMN kyc_notes,
    DROP COLUMN kyc_decided_at,
    DROP COLUMN kyc_decided_by,
    DROP COLUMN kyc_review_note,
    DROP COLUMN screening_hits,
    DROP COLUMN screening_list_versions,
    DROP COLUMN screened_at,
    DROP COLUMN watchlist_flagged_at;
UPDATE customers SET kyc_status = 'in_review' WHERE kyc_status = 'pending';
ALTER TABLE customers DROP CONSTRAINT customers_kyc_status_check;
ALTER TABLE customers ADD CONSTRAINT customers_kyc_status_check
    CHECK (kyc_status IN ('approved', 'in_review', 'rejected'));
"""


def upgrade() -> None:
    """Onboarding columns on customers; the watch-list version table."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Back to KYC decided inline (pending customers become in_review)."""
    op.execute(DOWNGRADE)
