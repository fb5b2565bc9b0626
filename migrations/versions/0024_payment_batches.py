"""Payment batches (issue #19): one request, up to 10,000 payments, approved once.

`payment_batches` holds the batch (status, who sent it, its totals by currency, the review
decision); `payment_batch_items` holds each accepted item as it was validated, with the id
its payment has (derived from the batch id and the item's index, so a retried batch names
the same payments) and where it stands before that payment exists (`pending`, `started`,
`canceled`). Once started, an item's status is its payment's.

`payments.batch_id` names the batch a payment came from; `GET /v1/payments?batch_id=` reads
it through `payments_tenant_batch_created_idx` (the list's order, tenant first, as every
other list of payments).

Revision ID: 0024
Revises: 0020
Create Date: 2026-12-07
"""

from alembic import op

revision = "0024"
down_revision = "0027"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE payment_batches (
    id text PRIMARY KEY,
    tenant_id text NOT NULL,
    reference text,
    source text NOT NULL CHECK (source IN ('json', 'csv', 'pain.001')),
    status text NOT NULL
        CHECK (status IN ('validating', 'in_review', 'processing', 'completed', 'canceled')),
    status_seq integer NOT NULL DEFAULT 0,
    initiated_by text NOT NULL,
    key_id text NOT NULL,
    item_count integer NOT NULL CHECK (item_count > 0),
    skipped_count integer NOT NULL DEFAULT 0,
    totals jsonb NOT NULL,
    needs_review boolean NOT NULL,
    reviewed_by text,
    review_decision text,
    review_note text,
    reviewed_at timestamptz,
    canceled_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX payment_batches_tenant_created_idx
    ON payment_batches (tenant_id, created_at DESC, id DESC);

CREATE TABLE payment_batch_items (
    batch_id text NOT NULL REFERENCES payment_batches (id),
    idx integer NOT NULL CHECK (idx >= 0),
    payment_id text NOT NULL UNIQUE,
    reference text,
    -- where the item was in what the client sent: JSON index, CSV line, pain.001 line
    source_line integer,
    amount bigint NOT NULL CHECK (amount > 0),
    currency text NOT NULL,
    rail text NOT NULL,
    request jsonb NOT NULL,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'started', 'canceled')),
    PRIMARY KEY (batch_id, idx)
);
-- the workflow pages through the items still to start, in order
CREATE INDEX payment_batch_items_pending_idx
    ON payment_batch_items (batch_id, idx) WHERE state = 'pending';

ALTER TABLE payments ADD COLUMN batch_id text;
CREATE INDEX payments_tenant_batch_created_idx
    ON payments (tenant_id, batch_id, created_at DESC, id DESC) WHERE batch_id IS NOT NULL;
"""

DOWNGRADE = """
DROP INDEX payments_tenant_batch_created_idx;
ALTER TABLE payments DROP COLUMN batch_id;
DROP TABLE payment_batch_items;
DROP TABLE payment_batches;
"""


def upgrade() -> None:
    """Apply."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Revert."""
    op.execute(DOWNGRADE)
