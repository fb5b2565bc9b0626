"""The published files of every adopted watch-list version (issue #17): `watch_list_snapshots`.

A refresh that records a version stores the files it read (sdn.csv, alt.csv, add.csv; the
PEP CSV), so every process loads the recorded version itself, not whatever its source serves
at the time it starts or reloads: a version the refresh refused stays out even for a worker
started after the refusal. Also the evidence of exactly what screening ran against.
Append-only like the versions; PostgreSQL compresses the contents (TOAST) by itself.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07

(Numbered 0018 when it was written on 0017; 0021 reached main first, so it follows 0021:
one line of revisions, no second head.)
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE watch_list_snapshots (
    list_name    text NOT NULL,
    version      text NOT NULL,
    file_name    text NOT NULL,
    content      bytea NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_name, version, file_name)
);
CREATE TRIGGER watch_list_snapshots_append_only BEFORE UPDATE OR DELETE ON watch_list_snapshots
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
"""


def upgrade() -> None:
    """Create the table."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Drop it."""
    op.execute("DROP TABLE watch_list_snapshots")
