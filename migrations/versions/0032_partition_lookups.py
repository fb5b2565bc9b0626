"""Per-payment statements on the partitioned tables read one month, not every month
(issue #23 item 1; ledger/sql/0032_partition_lookups.sql says how and why each is exact).

- The ledger functions (single-event and batch) read transfers by (id, created_at), the month
  taken from `ledger_transfer_ids`; the ledger's checks read the statement's months first; a changed
  account is compared with the entry at its new version (the trigger now also sees the old
  rows); the once-triggers of events and status history look from the payment's month on.
- New ledger rules that make the bounded reads exact: an entry lies in its transfer's month,
  and is never dated more than a month before its predecessor.
- Bytes kept forever per payment (issue #23 goal: at most 4 KB; 4.16 KB measured at 100k):
  two indexes that repeat another's leading columns go. `payment_status_history_payment_idx`
  (payment_id, seq) is the primary key (payment_id, seq, at) without its last column (163 B
  a payment: three records); `payments_tenant_idx` (tenant_id, id) serves nothing the
  primary key (id) and the tenant's (tenant_id, created_at DESC, id DESC) do not (70 B).
  tests/integration/test_query_plans.py checks every query's plan without them.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07
"""

from pathlib import Path

from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parents[2] / "ledger" / "sql"


def _functions_0006(*names: str) -> str:
    """The definitions of `names` as ledger/sql/0006_functions.sql wrote them."""
    source = (SQL_DIR / "0006_functions.sql").read_text()
    parts = []
    for name in names:
        start = source.index(f"CREATE OR REPLACE FUNCTION {name}(")
        parts.append(source[start : source.index("END $$;", start) + len("END $$;")])
    return "\n".join(parts)


def upgrade() -> None:
    """Load the bounded functions and checks; drop the redundant indexes."""
    op.execute((SQL_DIR / "0032_partition_lookups.sql").read_text())
    op.execute("DROP INDEX payment_status_history_payment_idx")
    op.execute("DROP INDEX payments_tenant_idx")


def downgrade() -> None:
    """Back to 0022's functions and checks (and its account trigger without old rows), and
    the two indexes."""
    op.execute("CREATE INDEX payments_tenant_idx ON payments (tenant_id, id)")
    op.execute(
        "CREATE INDEX payment_status_history_payment_idx"
        " ON payment_status_history (payment_id, seq)"
    )
    op.execute(
        _functions_0006(
            "ledger_create_transfer", "ledger_create_transfer_locked", "ledger_create_transfers"
        )
    )
    op.execute("""
    DROP TRIGGER ledger_accounts_change_has_entries ON ledger_accounts;
    CREATE TRIGGER ledger_accounts_change_has_entries AFTER UPDATE ON ledger_accounts
        REFERENCING NEW TABLE AS ledger_accounts_new
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_account_changes();
    """)
    op.execute(_functions_0006("ledger_check_transfers_have_entries"))
    # 0022's checks and its generic plans for the single-event functions
    op.execute((SQL_DIR / "0022_partitions.sql").read_text())
    op.execute("""
    CREATE OR REPLACE FUNCTION events_once() RETURNS trigger LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan AS $$
    BEGIN
        IF EXISTS (SELECT FROM events e WHERE e.id = NEW.id) THEN RETURN NULL; END IF;
        RETURN NEW;
    END $$;
    CREATE OR REPLACE FUNCTION payment_status_history_once() RETURNS trigger LANGUAGE plpgsql
    SET plan_cache_mode = force_generic_plan AS $$
    BEGIN
        IF EXISTS (SELECT FROM payment_status_history h
                    WHERE h.payment_id = NEW.payment_id AND h.seq = NEW.seq) THEN
            RETURN NULL;
        END IF;
        RETURN NEW;
    END $$;
    """)
