"""SQLAlchemy Core table definitions: the shape the code queries.

The migrations in `migrations/versions/` are the authority on the schema (including the
constraints and triggers that protect money even from buggy code); these definitions only
name the columns for queries.
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

tenants = Table(
    "tenants",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", DateTime(timezone=True)),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("principal", Text, nullable=False),
    Column("prefix", Text, nullable=False, unique=True),
    Column("secret_hash", Text, nullable=False),
    Column("scopes", ARRAY(Text), nullable=False),
    Column("created_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("rate_limit_per_second", Integer),
)

customers = Table(
    "customers",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("country", Text, nullable=False),
    Column("address", JSONB),
    Column("date_of_birth", Date),
    Column("national_id", Text),
    Column("registration_number", Text),
    Column("kyc_status", Text, nullable=False),
    Column("kyc_risk_tier", Text),
    Column("kyc_reasons", JSONB, nullable=False),
    Column("kyc_review_date", Date),
    Column("created_at", DateTime(timezone=True)),
    # onboarding (migration 0007)
    Column("tax_id", Text),
    Column("created_by", Text),
    Column("kyc_notes", JSONB, nullable=False),
    Column("kyc_decided_at", DateTime(timezone=True)),
    Column("kyc_decided_by", Text),
    Column("kyc_review_note", Text),
    Column("screening_hits", JSONB, nullable=False),
    Column("screening_list_versions", JSONB, nullable=False),
    Column("screened_at", DateTime(timezone=True)),
    Column("watchlist_flagged_at", DateTime(timezone=True)),
    # erasure (migration 0020): personal fields are blanked, the row and its ids stay
    Column("erased_at", DateTime(timezone=True)),
)

payments = Table(
    "payments",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("rail", Text, nullable=False),
    Column("creditor", JSONB, nullable=False),
    Column("remittance_info", Text),
    Column("metadata", JSONB, nullable=False),
    Column("initiated_by", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("status_seq", Integer, nullable=False),
    Column("failure_code", Text),
    Column("failure_message", Text),
    Column("failure_reason", Text),
    Column("screening_hits", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True)),
    Column("action_reason", Text),
    Column("updated_at", DateTime(timezone=True)),
    # migration 0020: when its personal details were erased (customer erasure, retention)
    Column("details_erased_at", DateTime(timezone=True)),
    # migration 0027: the saved counterparty its creditor was taken from
    Column("counterparty_id", Text),
    # migration 0024: the batch it came from (POST /v1/payment-batches)
    Column("batch_id", Text),
    # migration 0028: the sender's recall of the settled payment (services/recalls.py)
    Column("recall", JSONB),
    # migration 0031: when a `scheduled` payment executes, and the schedule that made it
    Column("execute_at", DateTime(timezone=True)),
    Column("schedule_id", Text),
)

# migration 0031: recurring payments (services/payment_schedules.py), run by Temporal Schedules
payment_schedules = Table(
    "payment_schedules",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("template", JSONB, nullable=False),
    Column("interval_seconds", Integer),
    Column("calendar", JSONB),
    Column("start_at", DateTime(timezone=True), nullable=False),
    Column("end_at", DateTime(timezone=True)),
    Column("business_day_convention", Text, nullable=False),
    Column("reference", Text),
    Column("initiated_by", Text, nullable=False),
    Column("key_id", Text, nullable=False),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    Column("deleted_at", DateTime(timezone=True)),
    # [{"from": ISO 8601, "until": ISO 8601 | null}]: when it was paused (migration 0033)
    Column("paused_periods", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
)

payment_batches = Table(
    "payment_batches",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("reference", Text),
    Column("source", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("status_seq", Integer, nullable=False),
    Column("initiated_by", Text, nullable=False),
    Column("key_id", Text, nullable=False),
    Column("item_count", Integer, nullable=False),
    Column("skipped_count", Integer, nullable=False),
    Column("totals", JSONB, nullable=False),
    Column("needs_review", Boolean, nullable=False),
    Column("reviewed_by", Text),
    Column("review_decision", Text),
    Column("review_note", Text),
    Column("reviewed_at", DateTime(timezone=True)),
    Column("canceled_by", Text),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
)

payment_batch_items = Table(
    "payment_batch_items",
    metadata,
    Column("batch_id", Text, primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("payment_id", Text, nullable=False),
    Column("reference", Text),
    Column("source_line", Integer),
    Column("amount", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("rail", Text, nullable=False),
    Column("request", JSONB, nullable=False),
    Column("state", Text, nullable=False),
)

payment_status_history = Table(
    "payment_status_history",
    metadata,
    Column("payment_id", Text, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("status", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("detail", JSONB),
)

deposits = Table(
    "deposits",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("account_id", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("created_at", DateTime(timezone=True)),
    # migration 0016: review above the threshold, the bank's reference for reconciliation
    Column("status", Text, nullable=False, server_default="credited"),
    Column("bank_reference", Text),
    Column("created_by_key_id", Text),
    Column("credited_at", DateTime(timezone=True)),
    Column("reviewed_by", Text),
    Column("review_note", Text),
    Column("reviewed_at", DateTime(timezone=True)),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("method_path", Text, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("response_status", Integer),
    Column("response_body", JSONB),
    Column("created_at", DateTime(timezone=True)),
)

# the bank's callbacks already acted on, by their signed event id: a replay of a captured
# callback inside the signature's tolerance window is acknowledged and ignored (purged after
# twice that window by `payments purge`)
rail_callback_receipts = Table(
    "rail_callback_receipts",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("description", Text),
    Column("secret", Text, nullable=False),
    Column("created_at", DateTime(timezone=True)),
    Column("disabled_at", DateTime(timezone=True)),
    # after a rotation, the secret before it, valid until its expiry (migration 0015)
    Column("previous_secret", Text),
    Column("previous_secret_expires_at", DateTime(timezone=True)),
    # the event types it receives (`payment.settled`, `payment.*`); NULL: all (0015)
    Column("event_types", ARRAY(Text)),
)

events = Table(
    "events",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("payment_id", Text),
    Column("data", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True)),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("endpoint_id", Text, primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("delivered_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
)

audit_log = Table(
    "audit_log",
    metadata,
    # (chain, seq, at) is unique: each chain (a tenant's; '': the platform's) numbers its own
    Column("seq", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("chain", Text, nullable=False, server_default=""),
    Column("tenant_id", Text),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("subject", Text),
    Column("detail", JSONB, nullable=False),
    Column("idempotency_key", Text),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
)

# one row per successful `ledger verify` / `audit verify` (kernel/checkpoints.py): an audit
# checkpoint anchors the chain head it verified, a ledger one the totals it found
verification_checkpoints = Table(
    "verification_checkpoints",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("mode", Text, nullable=False),
    Column("created_at", DateTime(timezone=True)),
    Column("audit_seq", BigInteger),
    Column("audit_hash", Text),
    # every chain's head it verified: {"": [seq, hash], "<tenant>": [seq, hash]}
    Column("audit_heads", JSONB),
    Column("ledger_totals", JSONB),
    Column("checked_rows", BigInteger, nullable=False),
)

# months of the ledger and the audit log detached and written to archive files (migration
# 0022, services/archive.py): the file's checksum and row count, and the chain's anchors at
# the boundary (audit: the first and last sequence numbers and hashes; ledger: accounts)
archived_partitions = Table(
    "archived_partitions",
    metadata,
    Column("partition_name", Text, primary_key=True),
    Column("table_name", Text, nullable=False),
    Column("month", Date, nullable=False),
    Column("file_name", Text, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("anchors", JSONB, nullable=False),
    Column("archived_at", DateTime(timezone=True)),
)

# every watch-list version the platform adopted; a list's current version is its newest row
watch_list_versions = Table(
    "watch_list_versions",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("list_name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("version", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("entities", Integer, nullable=False),
    Column("refresh_id", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

# the published files of each adopted list version, so every process loads exactly the
# recorded version (migration 0018)
watch_list_snapshots = Table(
    "watch_list_snapshots",
    metadata,
    Column("list_name", Text, primary_key=True),
    Column("version", Text, primary_key=True),
    Column("file_name", Text, primary_key=True),
    Column("content", LargeBinary, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

# the trace number of every ACH payment, and the window/file it went out in
ach_entries = Table(
    "ach_entries",
    metadata,
    Column("payment_id", Text, primary_key=True),
    # unique per file and per effective date, not forever (migration 0011)
    Column("trace_number", Text, nullable=False),
    Column("window_id", Text, nullable=False),
    Column("file_id", Text, nullable=False),
    Column("effective_date", Date, nullable=False),
    # the bank's settlement date, from its notice for the file (migration 0030)
    Column("settled_on", Date),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
)

# one reconciliation of a rail's bank statement (camt.053) against the ledger
reconciliation_runs = Table(
    "reconciliation_runs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("statement_date", Date, nullable=False),
    Column("rail", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("matched", Integer, nullable=False),
    Column("discrepancies", Integer, nullable=False),
    Column("statement_entries", Integer, nullable=False),
    Column("ledger_entries", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True)),
)

reconciliation_discrepancies = Table(
    "reconciliation_discrepancies",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("reference", Text, nullable=False),
    Column("payment_id", Text),
    Column("currency", Text, nullable=False),
    Column("ledger_amount", BigInteger),
    Column("statement_amount", BigInteger),
    Column("deposit_id", Text),  # migration 0016
)

# the payload codec's data keys (kernel/data_keys.py, migration 0020): one per subject (a
# payment's or an onboarding's workflow id, or `hold:<customer>`), wrapped under a master key;
# deleting a row shreds every payload and sealed field encrypted under it
payload_data_keys = Table(
    "payload_data_keys",
    metadata,
    Column("subject", Text, primary_key=True),
    Column("master_key_id", Text, nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True)),
)

# one row per erased customer (services/erasure.py): the pseudonymous register that proves
# the erasure and lets a restored backup replay it; ids only, no personal data
customer_erasures = Table(
    "customer_erasures",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("erased_at", DateTime(timezone=True), nullable=False),
    Column("erased_by", Text, nullable=False),
    Column("reason", Text),
    Column("payments", Integer, nullable=False),
    Column("keys_shredded", Integer, nullable=False),
    Column("legal_hold_until", DateTime(timezone=True)),
)

# what AML record-keeping requires of an erased customer, sealed under the data key of
# `hold:<customer>`: readable by compliance until `hold_until`, then the purge shreds it
legal_holds = Table(
    "legal_holds",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("sealed", Text, nullable=False),
    Column("hold_until", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True)),
)

# saved beneficiaries of a tenant, with their verification and screening (migration 0027)
counterparties = Table(
    "counterparties",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("rail", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("country", Text, nullable=False),
    Column("iban", Text),
    Column("bic", Text),
    Column("routing_number", Text),
    Column("account_number", Text),
    Column("account_type", Text, nullable=False),
    Column("verification_status", Text, nullable=False),
    Column("verification_method", Text, nullable=False),
    Column("matched_name", Text),
    Column("verification_reason", Text),
    Column("verified_at", DateTime(timezone=True)),
    Column("screening_decision", Text, nullable=False),
    Column("screening_hits", JSONB, nullable=False),
    Column("screening_versions", JSONB, nullable=False),
    Column("screened_at", DateTime(timezone=True), nullable=False),
    Column("created_by", Text, nullable=False),
    Column("disabled_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
)
