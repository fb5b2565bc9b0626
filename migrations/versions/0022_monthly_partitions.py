"""The append-only tables partitioned by month, and archived months of the ledger and audit
(issue #23 item 4).

- `ledger_transfers`, `ledger_entries` (by `created_at`), `audit_log` (by `at`), `events`
  (by `created_at`) and `payment_status_history` (by `at`) become range-partitioned by
  calendar month (UTC); the existing rows are copied into their month's partition. A
  partition is `<table>_pYYYYMM`.
- `partitions_ensure(from, to)` creates the missing partitions of every month in a range;
  the `partition-maintenance` schedule calls it daily for the months ahead
  (services/partitions.py). No default partition: a row whose month has no partition is
  refused rather than parked where archiving could not see it.
- A unique constraint of a partitioned table must contain the partition key, so:
  - transfer ids and "one resolution per pending transfer" move to the narrow,
    unpartitioned `ledger_transfer_ids`, filled as each transfer row is written
    (ledger/sql/0022_partitions.sql says why this keeps exactly-once);
  - an entry's (account, version) is checked by the entries trigger instead of a key;
  - an event's id and a status history's (payment, seq) stay unique per month by key, and
    a BEFORE INSERT trigger skips a row whose id exists in another month (what
    `ON CONFLICT DO NOTHING` did for a retry); `webhook_deliveries` no longer has a foreign
    key to `events` (the purge deletes deliveries with their events);
  - the audit log's sequence number is unique per month by key; appends are serialised by
    the chain's advisory lock and `audit verify` checks the sequence; its idempotency key
    and hash keep indexes, no longer unique ones.
- `archived_partitions` (append-only): one row per partition detached and written to an
  archive file, with the file's checksum, row count and chain anchors;
  `ledger_archived_accounts`: each account's version and balances at the end of the newest
  archived month it had entries in (what its next entry continues from).

Revision ID: 0022
Revises: 0020
Create Date: 2026-12-07
"""

from dataclasses import dataclass
from pathlib import Path

from alembic import op

revision = "0022"
down_revision = "0020"
branch_labels = None
depends_on = None

SQL_DIR = Path(__file__).resolve().parents[2] / "ledger" / "sql"

# months created ahead by the migration (the schedule keeps it so)
MONTHS_AHEAD = 3


@dataclass(frozen=True)
class Partitioned:
    """How one table is rebuilt partitioned: its key, its primary key and what hangs on it."""

    name: str
    key: str
    primary_key: str
    after: str  # indexes, foreign keys and triggers, created once the rows are in


TABLES = (
    Partitioned(
        "ledger_transfers",
        "created_at",
        "id, created_at",
        """
        ALTER TABLE ledger_transfers
            ADD FOREIGN KEY (debit_account_id) REFERENCES ledger_accounts(id),
            ADD FOREIGN KEY (credit_account_id) REFERENCES ledger_accounts(id);
        CREATE INDEX ledger_transfers_code_created_idx ON ledger_transfers (code, created_at);
        CREATE INDEX ledger_transfers_expiry_idx ON ledger_transfers (expires_at)
            WHERE expires_at IS NOT NULL;
        CREATE INDEX ledger_transfers_resolution_idx ON ledger_transfers (pending_id)
            WHERE pending_id IS NOT NULL;
        CREATE TRIGGER ledger_transfers_append_only BEFORE UPDATE OR DELETE ON ledger_transfers
            FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
        CREATE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers
            FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
        CREATE TRIGGER ledger_transfers_have_entries AFTER INSERT ON ledger_transfers
            REFERENCING NEW TABLE AS ledger_transfers_new
            FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_transfers_have_entries();
        CREATE TRIGGER ledger_transfers_ids BEFORE INSERT ON ledger_transfers
            FOR EACH ROW EXECUTE FUNCTION ledger_record_transfer_id();
        """,
    ),
    Partitioned(
        "ledger_entries",
        "created_at",
        "account_id, version, created_at",
        """
        CREATE INDEX ledger_entries_transfer_idx ON ledger_entries (transfer_id);
        CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
            FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
        CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
            FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
        CREATE TRIGGER ledger_entries_balance_their_transfer AFTER INSERT ON ledger_entries
            REFERENCING NEW TABLE AS ledger_entries_new
            FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_entries();
        """,
    ),
    Partitioned(
        "audit_log",
        "at",
        "seq, at",
        """
        CREATE INDEX audit_log_seq_idx ON audit_log (seq);
        CREATE INDEX audit_log_idempotency_key_idx ON audit_log (idempotency_key)
            WHERE idempotency_key IS NOT NULL;
        CREATE INDEX audit_log_subject_idx ON audit_log (subject, seq);
        CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
            FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
        CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
            FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
        """,
    ),
    Partitioned(
        "events",
        "created_at",
        "id, created_at",
        """
        ALTER TABLE events
            ADD FOREIGN KEY (payment_id) REFERENCES payments(id),
            ADD FOREIGN KEY (tenant_id) REFERENCES tenants(id);
        CREATE INDEX events_id_idx ON events (id);
        CREATE INDEX events_created_idx ON events (created_at);
        CREATE INDEX events_tenant_idx ON events (tenant_id, created_at DESC, id DESC);
        CREATE INDEX events_tenant_payment_idx
            ON events (tenant_id, payment_id, created_at DESC, id DESC);
        CREATE INDEX events_tenant_type_idx ON events (tenant_id, type, created_at DESC, id DESC);
        CREATE TRIGGER events_once BEFORE INSERT ON events
            FOR EACH ROW EXECUTE FUNCTION events_once();
        """,
    ),
    Partitioned(
        "payment_status_history",
        "at",
        "payment_id, seq, at",
        """
        ALTER TABLE payment_status_history
            ADD FOREIGN KEY (payment_id) REFERENCES payments(id);
        CREATE INDEX payment_status_history_payment_idx ON payment_status_history (payment_id, seq);
        CREATE TRIGGER payment_status_history_once BEFORE INSERT ON payment_status_history
            FOR EACH ROW EXECUTE FUNCTION payment_status_history_once();
        """,
    ),
)

FUNCTIONS = """
-- Every month's partition of every partitioned table from p_from's month to p_to's, in UTC;
-- answers how many it created. Never recreates an archived month: a row for it is refused.
-- A lock timeout keeps it from queueing writers behind it for long (creating a partition
-- locks its table): it fails and the next run tries again.
CREATE FUNCTION partitions_ensure(p_from timestamptz, p_to timestamptz) RETURNS integer
LANGUAGE plpgsql SET TimeZone = 'UTC' SET lock_timeout = '10s' AS $$
DECLARE
    v_table text;
    v_month timestamptz;
    v_name text;
    v_created integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(7406392122);
    FOREACH v_table IN ARRAY ARRAY['ledger_transfers', 'ledger_entries', 'audit_log', 'events',
                                   'payment_status_history'] LOOP
        -- (while migration 0022 converts them one by one, some are not partitioned yet)
        CONTINUE WHEN NOT EXISTS (SELECT FROM pg_class c
                                   WHERE c.oid = to_regclass(v_table) AND c.relkind = 'p');
        v_month := date_trunc('month', p_from);
        WHILE v_month <= p_to LOOP
            v_name := v_table || '_p' || to_char(v_month, 'YYYYMM');
            IF to_regclass(v_name) IS NULL
               AND NOT EXISTS (SELECT FROM archived_partitions a
                                WHERE a.partition_name = v_name) THEN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                               v_name, v_table, v_month, v_month + interval '1 month');
                v_created := v_created + 1;
            END IF;
            v_month := v_month + interval '1 month';
        END LOOP;
    END LOOP;
    RETURN v_created;
END $$;

-- An event id is written once whatever its month (ids are derived: a retry carries the same
-- id); the row is skipped, as ON CONFLICT DO NOTHING skipped it on the old primary key.
-- (generic plans: see ledger/sql/0022_partitions.sql, 4)
CREATE FUNCTION events_once() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    IF EXISTS (SELECT FROM events e WHERE e.id = NEW.id) THEN RETURN NULL; END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION payment_status_history_once() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    IF EXISTS (SELECT FROM payment_status_history h
                WHERE h.payment_id = NEW.payment_id AND h.seq = NEW.seq) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;

CREATE TABLE archived_partitions (
    partition_name  text PRIMARY KEY,
    table_name      text NOT NULL,
    month           date NOT NULL,
    file_name       text NOT NULL,
    sha256          text NOT NULL,
    row_count       bigint NOT NULL,
    anchors         jsonb NOT NULL,
    archived_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX archived_partitions_table_idx ON archived_partitions (table_name, month DESC);
CREATE TRIGGER archived_partitions_append_only BEFORE UPDATE OR DELETE ON archived_partitions
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();

CREATE TABLE ledger_archived_accounts (
    account_id       text PRIMARY KEY,
    version          bigint NOT NULL CHECK (version > 0),
    debits_pending   bigint NOT NULL,
    debits_posted    bigint NOT NULL,
    credits_pending  bigint NOT NULL,
    credits_posted   bigint NOT NULL,
    month            date NOT NULL
);

CREATE TABLE ledger_transfer_ids (
    id          text PRIMARY KEY,
    pending_id  text REFERENCES ledger_transfer_ids(id),
    created_at  timestamptz NOT NULL
);
-- a hold is resolved (posted, voided or expired) at most once; partial: only resolutions
-- carry a pending id, so holds and single transfers add no entry to this index
CREATE UNIQUE INDEX ledger_transfer_ids_one_resolution ON ledger_transfer_ids (pending_id)
    WHERE pending_id IS NOT NULL;
"""


def _convert(table: Partitioned) -> str:
    old = f"{table.name}_unpartitioned"
    return f"""
    ALTER TABLE {table.name} RENAME TO {old};
    CREATE TABLE {table.name} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
        PARTITION BY RANGE ({table.key});
    SELECT partitions_ensure(
        coalesce((SELECT min({table.key}) FROM {old}), now()),
        now() + interval '{MONTHS_AHEAD} months');
    INSERT INTO {table.name} SELECT * FROM {old};
    DROP TABLE {old} CASCADE;
    ALTER TABLE {table.name} ADD PRIMARY KEY ({table.primary_key});
    {table.after}
    """  # noqa: S608 (this module's constants)


def upgrade() -> None:
    """Rebuild the five tables partitioned, keeping every row."""
    op.execute(FUNCTIONS)
    op.execute((SQL_DIR / "0022_partitions.sql").read_text())
    # the ids of the existing transfers, before the transfers move (their self reference
    # goes with the old table)
    op.execute(
        "INSERT INTO ledger_transfer_ids (id, pending_id, created_at)"
        " SELECT id, pending_id, created_at FROM ledger_transfers ORDER BY pending_id NULLS FIRST"
    )
    for table in TABLES:
        op.execute(_convert(table))


def downgrade() -> None:
    """Back to plain tables (refused once a month has been archived: its rows are gone)."""
    op.execute("""
    DO $$ BEGIN
        IF EXISTS (SELECT FROM archived_partitions) THEN
            RAISE EXCEPTION 'months have been archived: restore them before downgrading';
        END IF;
    END $$;
    """)
    for table in TABLES:
        old = f"{table.name}_partitioned"
        op.execute(f"""
        ALTER TABLE {table.name} RENAME TO {old};
        CREATE TABLE {table.name} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
        INSERT INTO {table.name} SELECT * FROM {old};
        DROP TABLE {old} CASCADE;
        """)  # noqa: S608 (this module's constants)
    op.execute(DOWNGRADE)
    # the 0006 checks (the part of its file before it swaps the old triggers out)
    checks = (SQL_DIR / "0006_functions.sql").read_text()
    op.execute(checks.split("DROP TRIGGER ledger_accounts_change_has_entry")[0])


DOWNGRADE = """
ALTER TABLE ledger_transfers ADD PRIMARY KEY (id),
    ADD FOREIGN KEY (debit_account_id) REFERENCES ledger_accounts(id),
    ADD FOREIGN KEY (credit_account_id) REFERENCES ledger_accounts(id),
    ADD FOREIGN KEY (pending_id) REFERENCES ledger_transfers(id);
CREATE INDEX ledger_transfers_code_created_idx ON ledger_transfers (code, created_at);
CREATE INDEX ledger_transfers_expiry_idx ON ledger_transfers (expires_at)
    WHERE expires_at IS NOT NULL;
CREATE UNIQUE INDEX ledger_transfers_one_resolution ON ledger_transfers (pending_id)
    WHERE pending_id IS NOT NULL;
CREATE TRIGGER ledger_transfers_append_only BEFORE UPDATE OR DELETE ON ledger_transfers
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_transfers_have_entries AFTER INSERT ON ledger_transfers
    REFERENCING NEW TABLE AS ledger_transfers_new
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_transfers_have_entries();

ALTER TABLE ledger_entries ADD PRIMARY KEY (account_id, version);
CREATE INDEX ledger_entries_transfer_idx ON ledger_entries (transfer_id);
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER ledger_entries_balance_their_transfer AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS ledger_entries_new
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_check_entries();

ALTER TABLE audit_log ADD PRIMARY KEY (seq), ADD UNIQUE (idempotency_key), ADD UNIQUE (hash);
CREATE INDEX audit_log_subject_idx ON audit_log (subject, seq);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

ALTER TABLE events ADD PRIMARY KEY (id),
    ADD FOREIGN KEY (payment_id) REFERENCES payments(id),
    ADD FOREIGN KEY (tenant_id) REFERENCES tenants(id);
CREATE INDEX events_created_idx ON events (created_at);
CREATE INDEX events_tenant_idx ON events (tenant_id, created_at DESC, id DESC);
CREATE INDEX events_tenant_payment_idx ON events (tenant_id, payment_id, created_at DESC, id DESC);
CREATE INDEX events_tenant_type_idx ON events (tenant_id, type, created_at DESC, id DESC);
ALTER TABLE webhook_deliveries ADD FOREIGN KEY (event_id) REFERENCES events(id);

ALTER TABLE payment_status_history ADD PRIMARY KEY (payment_id, seq),
    ADD FOREIGN KEY (payment_id) REFERENCES payments(id);

ALTER FUNCTION ledger_create_transfer(text, text, text, text, bigint, text, text, text, integer,
    boolean, timestamptz) RESET plan_cache_mode;
ALTER FUNCTION ledger_create_transfer_locked(text, text, text, text, bigint, text, text, text,
    integer, boolean, timestamptz) RESET plan_cache_mode;
ALTER FUNCTION ledger_create_transfers(jsonb, timestamptz) RESET plan_cache_mode;
ALTER FUNCTION ledger_expire_pending(timestamptz) RESET plan_cache_mode;
DROP FUNCTION partitions_ensure(timestamptz, timestamptz);
DROP FUNCTION events_once();
DROP FUNCTION payment_status_history_once();
DROP FUNCTION ledger_record_transfer_id();
DROP TABLE ledger_transfer_ids, ledger_archived_accounts, archived_partitions;
"""
