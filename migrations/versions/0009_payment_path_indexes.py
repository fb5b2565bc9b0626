"""Per-payment work independent of history: the velocity-limit check (issue #23).

`payments_velocity_idx` (tenant, customer, currency, created_at) INCLUDE (amount, status):
the velocity-limit check of every payment (activities/limits.py) reads only the customer's
payments of the last 24 hours in that currency, from the index alone once the visibility map
is set, instead of the tenant's (or the table's) whole past.

Chosen over per-customer rolling counters kept in the payment's transaction: a counter is a
hot row per busy customer, updated by every payment and again by every failure, cancel and
return that gives the allowance back, and a rolling 24-hour window needs time buckets and
their expiry; the index costs one more index insert per payment, and what it reads is bounded
by the daily count limit itself (a customer over it goes to review).

Built CONCURRENTLY, outside the migration transaction (Alembic's autocommit block): on a
production `payments` of millions of rows a plain CREATE INDEX holds a SHARE lock that stops
every payment for the length of the build. A concurrent build that fails leaves an INVALID
index behind, so the index is dropped (if present) and rebuilt: running the upgrade again
after a failure repairs it. The cost: the runner commits the revisions before this one first,
and this revision is not atomic with the ones after it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

INDEXES = {
    "payments_velocity_idx": (
        "payments (tenant_id, customer_id, currency, created_at) INCLUDE (amount, status)"
    ),
}


def upgrade() -> None:
    """Build the index without blocking payments."""
    with op.get_context().autocommit_block():
        for name, definition in INDEXES.items():
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"CREATE INDEX CONCURRENTLY {name} ON {definition}")


def downgrade() -> None:
    """Drop it."""
    with op.get_context().autocommit_block():
        for name in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
