"""Ledger engine: entries, failed ids, linked batches, timeouts, sharded hot accounts.

The posting rules move into one server-side function, `ledger_create_transfers`, so a batch
of transfers costs one round trip. The database enforces, whatever the calling code does:
- transfers, entries and failures are append-only (triggers);
- a balance changes only together with an entry that records it, chained to the previous
  entry of the account (deferred constraint trigger on ledger_accounts);
- every transfer's debit leg equals its credit leg (deferred constraint trigger);
- so the balances of each currency always sum to zero (and `payments ledger verify` checks);
- account flags and positive amounts (CHECK constraints, from 0001).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from pathlib import Path

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = """
ALTER TABLE ledger_accounts
    ADD COLUMN version bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
    ADD COLUMN parent_id text REFERENCES ledger_accounts(id);
CREATE INDEX ledger_accounts_parent_idx ON ledger_accounts (parent_id) WHERE parent_id IS NOT NULL;

ALTER TABLE ledger_transfers
    ADD COLUMN linked boolean NOT NULL DEFAULT false,
    ADD COLUMN timeout_seconds integer NOT NULL DEFAULT 0 CHECK (timeout_seconds >= 0),
    ADD COLUMN expires_at timestamptz,
    DROP CONSTRAINT ledger_transfers_kind_check,
    ADD CONSTRAINT ledger_transfers_kind_check CHECK (kind IN
        ('single', 'pending', 'post_pending', 'void_pending', 'expire_pending')),
    DROP CONSTRAINT ledger_transfers_check1,
    ADD CONSTRAINT ledger_transfers_resolves_pending CHECK (
        (kind IN ('post_pending', 'void_pending', 'expire_pending')) = (pending_id IS NOT NULL)),
    ADD CONSTRAINT ledger_transfers_timeout_only_pending CHECK (
        timeout_seconds = 0 OR kind = 'pending');
CREATE INDEX ledger_transfers_expiry_idx ON ledger_transfers (expires_at)
    WHERE expires_at IS NOT NULL;

-- One row per account leg of a transfer: what changed, and the balances and version after.
CREATE TABLE ledger_entries (
    account_id             text NOT NULL REFERENCES ledger_accounts(id),
    version                bigint NOT NULL CHECK (version > 0),
    transfer_id            text NOT NULL REFERENCES ledger_transfers(id),
    leg                    text NOT NULL CHECK (leg IN ('debit', 'credit')),
    debits_pending_delta   bigint NOT NULL,
    debits_posted_delta    bigint NOT NULL,
    credits_pending_delta  bigint NOT NULL,
    credits_posted_delta   bigint NOT NULL,
    debits_pending         bigint NOT NULL,
    debits_posted          bigint NOT NULL,
    credits_pending        bigint NOT NULL,
    credits_posted         bigint NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, version),
    -- a debit leg moves only debit balances, a credit leg only credit balances
    CHECK (leg = 'credit' OR (credits_pending_delta = 0 AND credits_posted_delta = 0)),
    CHECK (leg = 'debit' OR (debits_pending_delta = 0 AND debits_posted_delta = 0))
);
CREATE INDEX ledger_entries_transfer_idx ON ledger_entries (transfer_id);

-- A failed transfer id stays failed (TigerBeetle's id_already_failed).
CREATE TABLE ledger_transfer_failures (
    id          text PRIMARY KEY,
    result      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only: ' || TG_OP || ' refused';
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_transfer_failures_append_only
    BEFORE UPDATE OR DELETE ON ledger_transfer_failures
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
"""

# Existing transfers (from before this engine) get their entries replayed in order.
BACKFILL = """
WITH legs AS (
    SELECT t.debit_account_id AS account_id, t.id AS transfer_id, 'debit' AS leg, t.created_at,
           CASE t.kind WHEN 'pending' THEN t.amount WHEN 'single' THEN 0 ELSE -t.amount END
               AS dpe,
           CASE WHEN t.kind IN ('single', 'post_pending') THEN t.amount ELSE 0 END AS dpo,
           0::bigint AS cpe, 0::bigint AS cpo
    FROM ledger_transfers t
    UNION ALL
    SELECT t.credit_account_id, t.id, 'credit', t.created_at, 0, 0,
           CASE t.kind WHEN 'pending' THEN t.amount WHEN 'single' THEN 0 ELSE -t.amount END,
           CASE WHEN t.kind IN ('single', 'post_pending') THEN t.amount ELSE 0 END
    FROM ledger_transfers t
), ordered AS (
    SELECT legs.*,
           row_number() OVER w AS version,
           sum(dpe) OVER w AS s_dpe, sum(dpo) OVER w AS s_dpo,
           sum(cpe) OVER w AS s_cpe, sum(cpo) OVER w AS s_cpo
    FROM legs
    WINDOW w AS (PARTITION BY account_id ORDER BY created_at, transfer_id
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
INSERT INTO ledger_entries (account_id, version, transfer_id, leg, debits_pending_delta,
    debits_posted_delta, credits_pending_delta, credits_posted_delta, debits_pending,
    debits_posted, credits_pending, credits_posted, created_at)
SELECT account_id, version, transfer_id, leg, dpe, dpo, cpe, cpo, s_dpe, s_dpo, s_cpe, s_cpo,
       created_at
FROM ordered;

UPDATE ledger_accounts a SET version = e.version
FROM (SELECT account_id, max(version) AS version FROM ledger_entries GROUP BY account_id) e
WHERE a.id = e.account_id;

-- hot system accounts get 16 shards each; reads sum parent and shards
INSERT INTO ledger_accounts (id, currency, kind, parent_id)
SELECT p.id || '_s' || lpad(s::text, 2, '0'), p.currency, p.kind, p.id
FROM ledger_accounts p CROSS JOIN generate_series(0, 15) s
WHERE p.id IN ('acc_sys_funding_eur', 'acc_sys_funding_usd',
               'acc_sys_settlement_sepa_eur', 'acc_sys_settlement_ach_usd');
INSERT INTO ledger_accounts (id, currency, kind)
VALUES ('acc_sys_blocked_funds_eur', 'EUR', 'blocked_funds'),
       ('acc_sys_blocked_funds_usd', 'USD', 'blocked_funds'),
       ('acc_sys_fees_eur', 'EUR', 'fees'),
       ('acc_sys_fees_usd', 'USD', 'fees');
"""

INTEGRITY = """
-- A balance change must come with the entry that records it, chained to the previous entry.
CREATE FUNCTION ledger_check_account_entry() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ok boolean;
BEGIN
    IF NEW.version = 0 THEN
        ok := NEW.debits_pending = 0 AND NEW.debits_posted = 0
              AND NEW.credits_pending = 0 AND NEW.credits_posted = 0;
    ELSE
        SELECT e.debits_pending = NEW.debits_pending AND e.debits_posted = NEW.debits_posted
               AND e.credits_pending = NEW.credits_pending
               AND e.credits_posted = NEW.credits_posted
               AND e.debits_pending = coalesce(p.debits_pending, 0) + e.debits_pending_delta
               AND e.debits_posted = coalesce(p.debits_posted, 0) + e.debits_posted_delta
               AND e.credits_pending = coalesce(p.credits_pending, 0) + e.credits_pending_delta
               AND e.credits_posted = coalesce(p.credits_posted, 0) + e.credits_posted_delta
               AND (p.version IS NOT NULL OR NEW.version = 1)
          INTO ok
          FROM ledger_entries e
          LEFT JOIN ledger_entries p ON p.account_id = e.account_id AND p.version = e.version - 1
         WHERE e.account_id = NEW.id AND e.version = NEW.version;
    END IF;
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION USING
            MESSAGE = 'balance of ' || NEW.id || ' changed without a matching ledger entry',
            ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_accounts_change_has_entry
    AFTER UPDATE ON ledger_accounts DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_account_entry();

-- Every transfer has a debit leg and a credit leg of equal size: debits = credits.
CREATE FUNCTION ledger_check_transfer_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    legs integer;
    debits bigint;
    credits bigint;
BEGIN
    SELECT count(*),
           sum(debits_pending_delta + debits_posted_delta),
           sum(credits_pending_delta + credits_posted_delta)
      INTO legs, debits, credits
      FROM ledger_entries WHERE transfer_id = NEW.id;
    IF legs <> 2 OR debits IS DISTINCT FROM credits THEN
        RAISE EXCEPTION USING
            MESSAGE = 'transfer ' || NEW.id || ' is not balanced by its entries',
            ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_transfers_balanced
    AFTER INSERT ON ledger_transfers DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ledger_check_transfer_balanced();
"""

DOWNGRADE = """
DROP TRIGGER ledger_transfers_balanced ON ledger_transfers;
DROP TRIGGER ledger_accounts_change_has_entry ON ledger_accounts;
DROP FUNCTION ledger_check_transfer_balanced();
DROP FUNCTION ledger_check_account_entry();
DROP FUNCTION ledger_create_transfers(jsonb, timestamptz);
DROP FUNCTION ledger_apply_transfer(jsonb, timestamptz);
DROP FUNCTION ledger_remember_failure(text, text);
DROP FUNCTION ledger_post_legs(text, text, text, bigint, bigint, bigint, bigint);
DROP FUNCTION ledger_expire_pending(timestamptz);
DROP TRIGGER ledger_transfers_no_truncate ON ledger_transfers;
DROP TABLE ledger_transfer_failures, ledger_entries;
DELETE FROM ledger_accounts WHERE parent_id IS NOT NULL OR id LIKE 'acc_sys_blocked_funds_%'
    OR id LIKE 'acc_sys_fees_%';
ALTER TABLE ledger_transfers
    DROP CONSTRAINT ledger_transfers_timeout_only_pending,
    DROP CONSTRAINT ledger_transfers_resolves_pending,
    DROP CONSTRAINT ledger_transfers_kind_check,
    ADD CONSTRAINT ledger_transfers_kind_check CHECK (kind IN
        ('single', 'pending', 'post_pending', 'void_pending')),
    ADD CONSTRAINT ledger_transfers_check1 CHECK (
        (kind IN ('post_pending', 'void_pending')) = (pending_id IS NOT NULL)),
    DROP COLUMN linked, DROP COLUMN timeout_seconds, DROP COLUMN expires_at;
ALTER TABLE ledger_accounts DROP COLUMN version, DROP COLUMN parent_id;
"""

FUNCTIONS_SQL = Path(__file__).resolve().parents[2] / "ledger" / "sql" / "0002_functions.sql"


def upgrade() -> None:
    """Create the entry-backed ledger and its batch function."""
    op.execute(SCHEMA)
    op.execute(BACKFILL)
    op.execute(INTEGRITY)
    op.execute(FUNCTIONS_SQL.read_text())


def downgrade() -> None:
    """Back to the 0001 ledger (only possible before expire/shard transfers exist)."""
    op.execute(DOWNGRADE)
