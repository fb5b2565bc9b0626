"""ACH entries (trace numbers of every originated payment) and reconciliation results.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE = """
-- trace numbers are unique for the ODFI (returns and settlement notices name only the trace),
-- so they come from one sequence, not from a per-file counter
CREATE SEQUENCE ach_trace_seq MAXVALUE 9999999 CYCLE;
CREATE TABLE ach_entries (
    payment_id    text PRIMARY KEY REFERENCES payments (id),
    trace_number  text NOT NULL UNIQUE CHECK (trace_number ~ '^[0-9]{15}$'),
    window_id     text NOT NULL,
    file_id       text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ach_entries_file_idx ON ach_entries (file_id);

CREATE TABLE reconciliation_runs (
    id                 text PRIMARY KEY,
    statement_date     date NOT NULL,
    rail               text NOT NULL,
    status             text NOT NULL CHECK (status IN ('matched', 'discrepancies')),
    matched            integer NOT NULL,
    discrepancies      integer NOT NULL,
    statement_entries  integer NOT NULL,
    ledger_entries     integer NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE reconciliation_discrepancies (
    run_id           text NOT NULL REFERENCES reconciliation_runs (id),
    seq              integer NOT NULL,
    kind             text NOT NULL
                     CHECK (kind IN ('missing_in_statement', 'missing_in_ledger',
                                     'amount_mismatch')),
    reference        text NOT NULL,
    payment_id       text,
    currency         text NOT NULL,
    ledger_amount    bigint,
    statement_amount bigint,
    PRIMARY KEY (run_id, seq)
);
"""


def upgrade() -> None:
    """Create the ACH entry and reconciliation tables."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Drop them."""
    op.execute(
        "DROP TABLE reconciliation_discrepancies; DROP TABLE reconciliation_runs;"
        " DROP TABLE ach_entries; DROP SEQUENCE ach_trace_seq"
    )
