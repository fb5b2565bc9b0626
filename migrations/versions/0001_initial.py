"""Initial schema: tenants and keys, customers, ledger, payments, idempotency.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The ledger's invariants live in the database as well as in code: even a buggy or hostile
# caller cannot overdraw a customer, post an unbalanced or non-positive transfer, resolve a
# hold twice, or rewrite history.
UPGRADE = """
CREATE TABLE tenants (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants(id),
    principal    text NOT NULL,
    prefix       text NOT NULL UNIQUE,
    secret_hash  text NOT NULL,
    scopes       text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

CREATE TABLE customers (
    id                   text PRIMARY KEY,
    tenant_id            text NOT NULL REFERENCES tenants(id),
    type                 text NOT NULL CHECK (type IN ('individual', 'business')),
    name                 text NOT NULL,
    country              char(2) NOT NULL,
    address              jsonb,
    date_of_birth        date,
    national_id          text,
    registration_number  text,
    kyc_status           text NOT NULL CHECK (kyc_status IN ('approved', 'in_review', 'rejected')),
    kyc_risk_tier        text CHECK (kyc_risk_tier IN ('low', 'medium', 'high')),
    kyc_reasons          jsonb NOT NULL DEFAULT '[]',
    kyc_review_date      date,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_tenant_idx ON customers (tenant_id, id);

CREATE TABLE ledger_accounts (
    id                              text PRIMARY KEY,
    tenant_id                       text REFERENCES tenants(id),
    customer_id                     text REFERENCES customers(id),
    currency                        char(3) NOT NULL,
    kind                            text NOT NULL CHECK (kind IN
        ('customer', 'settlement', 'funding', 'blocked_funds', 'fees')),
    debits_must_not_exceed_credits  boolean NOT NULL DEFAULT false,
    credits_must_not_exceed_debits  boolean NOT NULL DEFAULT false,
    debits_pending   bigint NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    debits_posted    bigint NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_pending  bigint NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    credits_posted   bigint NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT debits_within_credits CHECK (
        NOT debits_must_not_exceed_credits
        OR debits_pending + debits_posted <= credits_posted),
    CONSTRAINT credits_within_debits CHECK (
        NOT credits_must_not_exceed_debits
        OR credits_pending + credits_posted <= debits_posted),
    CONSTRAINT customer_accounts_have_owner CHECK (
        kind <> 'customer' OR (tenant_id IS NOT NULL AND customer_id IS NOT NULL))
);
CREATE INDEX ledger_accounts_tenant_idx ON ledger_accounts (tenant_id, id);

-- A transfer debits one account and credits another by the same amount: balanced by
-- construction. `pending` reserves, `post_pending`/`void_pending` resolve a reservation.
CREATE TABLE ledger_transfers (
    id                 text PRIMARY KEY,
    debit_account_id   text NOT NULL REFERENCES ledger_accounts(id),
    credit_account_id  text NOT NULL REFERENCES ledger_accounts(id),
    amount             bigint NOT NULL CHECK (amount > 0),
    currency           char(3) NOT NULL,
    code               text NOT NULL,
    kind               text NOT NULL CHECK (kind IN
        ('single', 'pending', 'post_pending', 'void_pending')),
    pending_id         text REFERENCES ledger_transfers(id),
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (debit_account_id <> credit_account_id),
    CHECK ((kind IN ('post_pending', 'void_pending')) = (pending_id IS NOT NULL))
);
-- a hold is resolved (posted or voided) at most once, whatever the callers do
CREATE UNIQUE INDEX ledger_transfers_one_resolution ON ledger_transfers (pending_id)
    WHERE pending_id IS NOT NULL;

CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = 'ledger_transfers is append-only: ' || TG_OP || ' refused';
END $$;
CREATE TRIGGER ledger_transfers_append_only
    BEFORE UPDATE OR DELETE ON ledger_transfers
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

-- System accounts per currency: funding (incoming money) and the SEPA/ACH settlement accounts.
INSERT INTO ledger_accounts (id, currency, kind) VALUES
    ('acc_sys_funding_eur', 'EUR', 'funding'),
    ('acc_sys_funding_usd', 'USD', 'funding'),
    ('acc_sys_settlement_sepa_eur', 'EUR', 'settlement'),
    ('acc_sys_settlement_ach_usd', 'USD', 'settlement');

CREATE TABLE deposits (
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants(id),
    account_id  text NOT NULL REFERENCES ledger_accounts(id),
    amount      bigint NOT NULL CHECK (amount > 0),
    currency    char(3) NOT NULL,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE payments (
    id               text PRIMARY KEY,
    tenant_id        text NOT NULL REFERENCES tenants(id),
    account_id       text NOT NULL REFERENCES ledger_accounts(id),
    customer_id      text NOT NULL REFERENCES customers(id),
    amount           bigint NOT NULL CHECK (amount > 0),
    currency         char(3) NOT NULL,
    rail             text NOT NULL CHECK (rail IN ('sepa', 'ach')),
    creditor         jsonb NOT NULL,
    remittance_info  text,
    metadata         jsonb NOT NULL DEFAULT '{}',
    initiated_by     text NOT NULL,
    status           text NOT NULL CHECK (status IN ('processing', 'in_review', 'submitted',
        'action_required', 'settled', 'failed', 'rejected', 'canceled', 'returned')),
    status_seq       integer NOT NULL DEFAULT 0,
    failure_code     text,
    failure_message  text,
    failure_reason   text,
    screening_hits   jsonb NOT NULL DEFAULT '[]',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_tenant_idx ON payments (tenant_id, id);
CREATE INDEX payments_tenant_status_idx ON payments (tenant_id, status, id);

CREATE TABLE payment_status_history (
    payment_id  text NOT NULL REFERENCES payments(id),
    seq         integer NOT NULL,
    status      text NOT NULL,
    at          timestamptz NOT NULL,
    detail      jsonb,
    PRIMARY KEY (payment_id, seq)
);

CREATE TABLE idempotency_keys (
    tenant_id        text NOT NULL REFERENCES tenants(id),
    key              text NOT NULL,
    method_path      text NOT NULL,
    fingerprint      text NOT NULL,
    response_status  integer,
    response_body    jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
"""

DOWNGRADE = """
DROP TABLE idempotency_keys, payment_status_history, payments, deposits;
DROP TRIGGER ledger_transfers_append_only ON ledger_transfers;
DROP FUNCTION ledger_append_only();
DROP TABLE ledger_transfers, ledger_accounts, customers, api_keys, tenants;
"""


def upgrade() -> None:
    """Create the initial schema."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Drop the initial schema."""
    op.execute(DOWNGRADE)
