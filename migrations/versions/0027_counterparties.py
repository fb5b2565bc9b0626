"""Saved counterparties (issue #18 items 2-4): beneficiaries with their verification (VoP for
SEPA, a prenote for ACH), screening and who changed them; payments may name one.

- `counterparties`: one row per saved beneficiary of a tenant; `verification_status` starts
  `pending`; `disabled_at` disables it (never deleted: payments name it). Listed newest first
  per tenant, so the page index is (tenant_id, created_at DESC, id DESC).
- `payments.counterparty_id`: nullable, no default (no table rewrite): the counterparty the
  payment's creditor was taken from.
- `ach_entries.payment_id` names a payment's entry or a counterparty's prenote: its foreign
  key to payments becomes a trigger that accepts either owner.

Revision ID: 0027
Revises: 0020
Create Date: 2026-12-07
"""

from alembic import op

revision = "0027"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the table and the column."""
    op.execute(
        """
CREATE TABLE counterparties (
    id                   text PRIMARY KEY,
    tenant_id            text NOT NULL,
    rail                 text NOT NULL CHECK (rail IN ('sepa', 'ach')),
    type                 text NOT NULL CHECK (type IN ('individual', 'business')),
    name                 text NOT NULL,
    country              text NOT NULL,
    iban                 text,
    bic                  text,
    routing_number       text,
    account_number       text,
    account_type         text NOT NULL DEFAULT 'checking'
                         CHECK (account_type IN ('checking', 'savings')),
    verification_status  text NOT NULL DEFAULT 'pending' CHECK (verification_status IN
                         ('pending', 'verified', 'close_match', 'no_match', 'failed')),
    verification_method  text NOT NULL CHECK (verification_method IN ('vop', 'prenote')),
    matched_name         text,
    verification_reason  text,
    verified_at          timestamptz,
    screening_decision   text NOT NULL,
    screening_hits       jsonb NOT NULL DEFAULT '[]',
    screening_versions   jsonb NOT NULL DEFAULT '[]',
    screened_at          timestamptz NOT NULL,
    created_by           text NOT NULL,
    disabled_at          timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CHECK ((rail = 'sepa' AND iban IS NOT NULL)
        OR (rail = 'ach' AND routing_number IS NOT NULL AND account_number IS NOT NULL))
);
CREATE INDEX counterparties_page_idx ON counterparties (tenant_id, created_at DESC, id DESC);
ALTER TABLE payments ADD COLUMN counterparty_id text;
ALTER TABLE ach_entries DROP CONSTRAINT ach_entries_payment_id_fkey;
CREATE FUNCTION ach_entry_owner_exists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM payments WHERE id = NEW.payment_id)
       AND NOT EXISTS (SELECT 1 FROM counterparties WHERE id = NEW.payment_id) THEN
        RAISE EXCEPTION 'ACH entry % names no payment or counterparty', NEW.payment_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER ach_entries_owner BEFORE INSERT OR UPDATE OF payment_id ON ach_entries
    FOR EACH ROW EXECUTE FUNCTION ach_entry_owner_exists();
"""
    )


def downgrade() -> None:
    """Drop them."""
    op.execute(
        """
DROP TRIGGER ach_entries_owner ON ach_entries;
DROP FUNCTION ach_entry_owner_exists();
DELETE FROM ach_entries WHERE payment_id NOT IN (SELECT id FROM payments);
ALTER TABLE ach_entries ADD CONSTRAINT ach_entries_payment_id_fkey
    FOREIGN KEY (payment_id) REFERENCES payments (id);
ALTER TABLE payments DROP COLUMN counterparty_id;
DROP TABLE counterparties;
"""
    )
