"""The audit log becomes one chain per tenant plus the platform chain (issue #20 item 3).

- `audit_log.chain`: the tenant whose chain a record extends; '' is the platform chain,
  which every record written before this migration belongs to (their hashes cover no
  `chain`, so they stay valid as they are; a column with a constant default rewrites no
  row). Not NULL: `chain = ''` lets the planner read a chain's head off the index in
  order, which `chain IS NULL` does not.
  Each chain has its own sequence numbers, head and advisory lock (kernel/audit.py), so
  appends of different tenants never wait on each other.
- The primary key (seq, at) becomes the unique key (chain, seq, at):
  sequence numbers repeat across chains; the key also serves each chain's head and ranges.
- `verification_checkpoints.audit_heads`: the head of every chain an audit verification
  verified (`{"": [seq, hash], "<tenant>": [seq, hash], ...}`, "" the platform chain), where
  the next incremental run continues; the checkpoint's record in the platform chain carries
  them too, which is how the tenants' chains are anchored into the platform chain.

Revision ID: 0029
Revises: 0027
Create Date: 2026-12-07
"""

from alembic import op

revision = "0029"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the chain column, re-key the log by chain, record heads per chain."""
    op.execute(
        """
ALTER TABLE audit_log ADD COLUMN chain text NOT NULL DEFAULT '';
ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey;
DROP INDEX audit_log_seq_idx;
CREATE UNIQUE INDEX audit_log_chain_seq_key ON audit_log (chain, seq, at);
ALTER TABLE verification_checkpoints ADD COLUMN audit_heads jsonb;
"""
    )


def downgrade() -> None:
    """Back to one chain: refused once a tenant's chain has a record (its sequence numbers
    would collide with the platform chain's)."""
    op.execute(
        """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM audit_log WHERE chain <> '') THEN
        RAISE EXCEPTION 'audit_log has records in tenant chains: cannot go back to one chain';
    END IF;
END $$;
ALTER TABLE verification_checkpoints DROP COLUMN audit_heads;
DROP INDEX audit_log_chain_seq_key;
ALTER TABLE audit_log DROP COLUMN chain;
ALTER TABLE audit_log ADD PRIMARY KEY (seq, at);
CREATE INDEX audit_log_seq_idx ON audit_log (seq);
"""
    )
