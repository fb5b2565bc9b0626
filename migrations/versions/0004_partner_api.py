"""Partner API: per-key rate limits, webhook endpoints, events and their deliveries.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE api_keys ADD COLUMN rate_limit_per_second integer CHECK (rate_limit_per_second > 0);

CREATE TABLE webhook_endpoints (
    id           text PRIMARY KEY,
    tenant_id    text NOT NULL REFERENCES tenants(id),
    url          text NOT NULL,
    description  text,
    secret       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    disabled_at  timestamptz
);
CREATE INDEX webhook_endpoints_tenant_idx ON webhook_endpoints (tenant_id, id);

-- One event per payment status change, written in the transaction that records the change.
CREATE TABLE events (
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants(id),
    type        text NOT NULL,
    payment_id  text REFERENCES payments(id),
    data        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_tenant_idx ON events (tenant_id, created_at DESC, id DESC);

CREATE TABLE webhook_deliveries (
    event_id       text NOT NULL REFERENCES events(id),
    endpoint_id    text NOT NULL REFERENCES webhook_endpoints(id),
    attempts       integer NOT NULL DEFAULT 0,
    last_status    integer,
    last_error     text,
    delivered_at   timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, endpoint_id)
);

-- payments are listed newest first by creation time (ids derive from idempotency keys)
CREATE INDEX payments_tenant_created_idx ON payments (tenant_id, created_at DESC, id DESC);
"""

DOWNGRADE = """
DROP INDEX payments_tenant_created_idx;
DROP TABLE webhook_deliveries, events, webhook_endpoints;
ALTER TABLE api_keys DROP COLUMN rate_limit_per_second;
"""


def upgrade() -> None:
    """Create the partner API tables."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Drop them again."""
    op.execute(DOWNGRADE)
