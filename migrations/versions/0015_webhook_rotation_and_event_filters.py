"""Webhook endpoints: secret rotation with an overlap, and event-type filters.

`POST /v1/webhook-endpoints/{id}/rotate-secret` moves `secret` to `previous_secret` (valid
until `previous_secret_expires_at`) and sets a new one; while both are valid, deliveries
carry a signature with each (Standard Webhooks: space-separated `v1,<sig>` values), so a
receiver can switch to the new secret at its own pace.

`event_types` lists the event types an endpoint receives (`payment.settled`, or every
`payment.` event as `payment.*`); NULL, as for every endpoint before this revision, is all.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE webhook_endpoints
    ADD COLUMN previous_secret text,
    ADD COLUMN previous_secret_expires_at timestamptz,
    ADD COLUMN event_types text[],
    ADD CONSTRAINT webhook_endpoints_previous_secret_expires
        CHECK ((previous_secret IS NULL) = (previous_secret_expires_at IS NULL));
"""

DOWNGRADE = """
ALTER TABLE webhook_endpoints
    DROP CONSTRAINT webhook_endpoints_previous_secret_expires,
    DROP COLUMN event_types,
    DROP COLUMN previous_secret_expires_at,
    DROP COLUMN previous_secret;
"""


def upgrade() -> None:
    """Add the previous secret, its expiry and the event-type filter."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Drop them (every endpoint then gets every event, signed with its current secret)."""
    op.execute(DOWNGRADE)
