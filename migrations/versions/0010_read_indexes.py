"""API reads, ops commands and reconciliation independent of history (issue #23).

Each list filter the API offers gets an index whose leading columns are its equalities and
whose next ones are the list's newest-first (created_at, id) keyset order, so a page reads
the rows it returns (plus one), whatever lies behind them:

- `payments_tenant_account_created_idx`: `GET /v1/payments?account_id=`. The tenant leads,
  so another tenant's account id (or an account without payments) finds nothing at once
  instead of walking the tenant's payments.
- `payments_tenant_status_created_idx`: `GET /v1/payments?status=`. Replaces
  `payments_tenant_status_idx` (tenant, status, id), which could not give the list's order
  without sorting every payment of that status. Both filters together use the account index
  and filter by status: bounded by that account's history, not the tenant's.
- `events_tenant_payment_idx`, `events_tenant_type_idx`: `GET /v1/events?payment_id=` and
  `?type=` (both together use the payment's index: a payment has a handful of events).
- `payments_status_updated_idx` (status, updated_at), `payments_updated_idx` (updated_at):
  `payments list [--status] [--older-than]` (most recently updated first, across tenants) and
  the open-payments gauge (it then reads open payments only, never the settled past).
- `ledger_transfers_code_created_idx` (code, created_at): daily reconciliation reads the
  day's payment postings and returns only.

Built CONCURRENTLY outside the migration transaction, like 0009 (see there why, and why each
index is dropped first).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

INDEXES = {
    "payments_tenant_account_created_idx": (
        "payments (tenant_id, account_id, created_at DESC, id DESC)"
    ),
    "payments_tenant_status_created_idx": "payments (tenant_id, status, created_at DESC, id DESC)",
    "payments_status_updated_idx": "payments (status, updated_at)",
    "payments_updated_idx": "payments (updated_at)",
    "events_tenant_payment_idx": "events (tenant_id, payment_id, created_at DESC, id DESC)",
    "events_tenant_type_idx": "events (tenant_id, type, created_at DESC, id DESC)",
    "ledger_transfers_code_created_idx": "ledger_transfers (code, created_at)",
}

SUPERSEDED = {"payments_tenant_status_idx": "payments (tenant_id, status, id)"}


def upgrade() -> None:
    """Build the indexes without blocking writes; drop the one they supersede."""
    with op.get_context().autocommit_block():
        for name, definition in INDEXES.items():
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"CREATE INDEX CONCURRENTLY {name} ON {definition}")
        for name in SUPERSEDED:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def downgrade() -> None:
    """Back to the 0009 indexes."""
    with op.get_context().autocommit_block():
        for name, definition in SUPERSEDED.items():
            op.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {definition}")
        for name in INDEXES:
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
