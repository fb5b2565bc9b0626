"""Erasure and crypto-shredding (issue #17): the codec's data keys, the erasure register,
legal holds, and the markers the retention purge of closed payments' details uses.

- `payload_data_keys`: one wrapped AES key per subject (kernel/data_keys.py); deleting a row
  shreds every Temporal payload and sealed field encrypted under it.
- `customer_erasures`: who was erased, when, by whom (ids only: the register must not itself
  hold what it erased), so an erasure is provable and can be replayed after a restore.
- `legal_holds`: what AML record-keeping requires of an erased customer, sealed under the
  customer's hold key until `hold_until`.
- `customers.erased_at`, `payments.details_erased_at`: nullable columns without defaults
  (no table rewrite); a partial index finds closed payments whose details are still there,
  oldest first, so the retention purge never scans the table.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables and columns."""
    op.execute(
        """
CREATE TABLE payload_data_keys (
    subject        text PRIMARY KEY,
    master_key_id  text NOT NULL,
    wrapped        bytea NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE customer_erasures (
    customer_id       text PRIMARY KEY REFERENCES customers(id),
    tenant_id         text NOT NULL,
    erased_at         timestamptz NOT NULL,
    erased_by         text NOT NULL,
    reason            text,
    payments          integer NOT NULL,
    keys_shredded     integer NOT NULL,
    legal_hold_until  timestamptz
);
CREATE TABLE legal_holds (
    customer_id  text PRIMARY KEY REFERENCES customers(id),
    tenant_id    text NOT NULL,
    sealed       text NOT NULL,
    hold_until   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX legal_holds_until_idx ON legal_holds (hold_until);
ALTER TABLE customers ADD COLUMN erased_at timestamptz;
ALTER TABLE payments ADD COLUMN details_erased_at timestamptz;
CREATE INDEX payments_details_due_idx ON payments (updated_at)
    WHERE details_erased_at IS NULL
      AND status IN ('canceled', 'failed', 'rejected', 'returned', 'settled');
"""
    )


def downgrade() -> None:
    """Drop them."""
    op.execute(
        """
DROP INDEX payments_details_due_idx;
ALTER TABLE payments DROP COLUMN details_erased_at;
ALTER TABLE customers DROP COLUMN erased_at;
DROP TABLE legal_holds;
DROP TABLE customer_erasures;
DROP TABLE payload_data_keys;
"""
    )
