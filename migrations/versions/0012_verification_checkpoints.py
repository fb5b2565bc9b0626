"""Verification checkpoints: incremental `ledger verify` and `audit verify` (issue #23).

- `verification_checkpoints`: one row per successful verification (`kind` ledger or audit,
  `mode` full or incremental). An audit checkpoint anchors the chain's head it verified
  (`audit_seq`, `audit_hash`): the next run checks that this link is still there and then
  only the records after it. A ledger checkpoint carries the per-currency totals it found.
  Every checkpoint is also appended to the audit chain (`audit.checkpoint`,
  `ledger.checkpoint`), and the table is append-only, like the audit log.
- `ledger_verified_accounts`: each account's version and four balances as of the newest
  ledger checkpoint that saw it change. The next run checks only the accounts whose row
  differs from it, and only their entries after that version (the primary key's range),
  so it costs what was written since, plus one pass over the accounts. It is the one
  mutable table here: rewritten to the verified state by each checkpoint, never by the
  ledger itself.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE verification_checkpoints (
    id             bigserial PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('ledger', 'audit')),
    mode           text NOT NULL CHECK (mode IN ('full', 'incremental')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    audit_seq      bigint,
    audit_hash     text,
    ledger_totals  jsonb,
    checked_rows   bigint NOT NULL,
    CHECK (kind <> 'audit' OR (audit_seq IS NOT NULL AND audit_hash IS NOT NULL)),
    CHECK (kind <> 'ledger' OR ledger_totals IS NOT NULL)
);
CREATE INDEX verification_checkpoints_kind_idx ON verification_checkpoints (kind, id DESC);
CREATE TRIGGER verification_checkpoints_append_only
    BEFORE UPDATE OR DELETE ON verification_checkpoints
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER verification_checkpoints_no_truncate BEFORE TRUNCATE ON verification_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

CREATE TABLE ledger_verified_accounts (
    account_id       text PRIMARY KEY,
    version          bigint NOT NULL,
    debits_pending   bigint NOT NULL,
    debits_posted    bigint NOT NULL,
    credits_pending  bigint NOT NULL,
    credits_posted   bigint NOT NULL,
    checkpoint_id    bigint NOT NULL REFERENCES verification_checkpoints(id)
);
"""


def upgrade() -> None:
    """Create the checkpoint tables."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Drop them (the audit records of past checkpoints stay in the chain)."""
    op.execute("DROP TABLE ledger_verified_accounts, verification_checkpoints")
