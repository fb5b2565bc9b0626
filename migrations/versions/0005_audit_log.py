"""Hash-chained audit log of every decision.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE audit_log (
    seq              bigint PRIMARY KEY CHECK (seq > 0),
    at               timestamptz NOT NULL,
    tenant_id        text,
    actor            text NOT NULL,
    action           text NOT NULL,
    subject          text,
    detail           jsonb NOT NULL,
    idempotency_key  text UNIQUE,
    prev_hash        text NOT NULL,
    hash             text NOT NULL UNIQUE
);
CREATE INDEX audit_log_subject_idx ON audit_log (subject, seq);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
"""


def upgrade() -> None:
    """Create the audit log."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Drop it."""
    op.execute("DROP TABLE audit_log")
