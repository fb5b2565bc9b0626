"""Payments on a date and payment schedules (issue #19 item 4).

- `payments.status` may be `scheduled`: a payment with `execute_at` in the future waits in it
  (nothing checked, nothing held) until then; `payments.execute_at` keeps the time.
- `payment_schedules` (tenant-scoped): a recurring payment, i.e. a validated payment template
  plus an interval or a calendar rule, its start and end, and a business-day convention. A
  Temporal Schedule with the same id runs it; each run makes one payment whose id derives
  from the schedule id and the run's nominal time, named by `payments.schedule_id`
  (`GET /v1/payments?schedule_id=` reads it through its partial index).

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07
"""

from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (status IN ('scheduled',
    'processing', 'in_review', 'submitted', 'action_required', 'settled', 'failed',
    'rejected', 'canceled', 'returned'));
ALTER TABLE payments ADD COLUMN execute_at timestamptz;
ALTER TABLE payments ADD COLUMN schedule_id text;
CREATE INDEX payments_tenant_schedule_created_idx
    ON payments (tenant_id, schedule_id, created_at DESC, id DESC) WHERE schedule_id IS NOT NULL;

CREATE TABLE payment_schedules (
    id text PRIMARY KEY,
    tenant_id text NOT NULL,
    status text NOT NULL CHECK (status IN ('active', 'paused', 'deleted')),
    -- the validated payment every run makes (account, amount, currency, rail, creditor, ...)
    template jsonb NOT NULL,
    interval_seconds integer CHECK (interval_seconds > 0),
    calendar jsonb,
    CHECK ((interval_seconds IS NULL) <> (calendar IS NULL)),
    start_at timestamptz NOT NULL,
    end_at timestamptz CHECK (end_at > start_at),
    business_day_convention text NOT NULL
        CHECK (business_day_convention IN ('following', 'preceding', 'none')),
    reference text,
    initiated_by text NOT NULL,
    key_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX payment_schedules_tenant_created_idx
    ON payment_schedules (tenant_id, created_at DESC, id DESC);
"""

DOWNGRADE = """
DROP TABLE payment_schedules;
DROP INDEX payments_tenant_schedule_created_idx;
ALTER TABLE payments DROP COLUMN schedule_id;
ALTER TABLE payments DROP COLUMN execute_at;
ALTER TABLE payments DROP CONSTRAINT payments_status_check;
ALTER TABLE payments ADD CONSTRAINT payments_status_check CHECK (status IN ('processing',
    'in_review', 'submitted', 'action_required', 'settled', 'failed', 'rejected', 'canceled',
    'returned'));
"""


def upgrade() -> None:
    """Apply."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Revert."""
    op.execute(DOWNGRADE)
