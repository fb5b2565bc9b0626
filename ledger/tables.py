"""The ledger's own tables (SQLAlchemy Core): the shape the engine queries.

The migrations are the authority on the schema, including the constraints and triggers that
keep the ledger balanced even against buggy code; these definitions only name the columns.
The ledger owns them: nothing outside the ledger writes them, and the ledger imports no
table of the platform's.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, Integer, MetaData, Table, Text

metadata = MetaData()

ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", Text, primary_key=True),
    Column("tenant_id", Text),
    Column("customer_id", Text),
    Column("currency", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("debits_must_not_exceed_credits", Boolean, nullable=False),
    Column("credits_must_not_exceed_debits", Boolean, nullable=False),
    Column("debits_pending", BigInteger, nullable=False),
    Column("debits_posted", BigInteger, nullable=False),
    Column("credits_pending", BigInteger, nullable=False),
    Column("credits_posted", BigInteger, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("parent_id", Text),
    Column("created_at", DateTime(timezone=True)),
)

ledger_transfers = Table(
    "ledger_transfers",
    metadata,
    Column("id", Text, primary_key=True),
    Column("debit_account_id", Text, nullable=False),
    Column("credit_account_id", Text, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("code", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("pending_id", Text),
    Column("linked", Boolean, nullable=False),
    Column("timeout_seconds", Integer, nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True)),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("account_id", Text, primary_key=True),
    Column("version", BigInteger, primary_key=True),
    Column("transfer_id", Text, nullable=False),
    Column("leg", Text, nullable=False),
    Column("debits_pending_delta", BigInteger, nullable=False),
    Column("debits_posted_delta", BigInteger, nullable=False),
    Column("credits_pending_delta", BigInteger, nullable=False),
    Column("credits_posted_delta", BigInteger, nullable=False),
    Column("debits_pending", BigInteger, nullable=False),
    Column("debits_posted", BigInteger, nullable=False),
    Column("credits_pending", BigInteger, nullable=False),
    Column("credits_posted", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True)),
)

ledger_transfer_failures = Table(
    "ledger_transfer_failures",
    metadata,
    Column("id", Text, primary_key=True),
    Column("result", Text, nullable=False),
    Column("created_at", DateTime(timezone=True)),
)

# Each account's state as of the newest ledger checkpoint that saw it change
# (ledger/incremental.py); written by the verifier only.
ledger_verified_accounts = Table(
    "ledger_verified_accounts",
    metadata,
    Column("account_id", Text, primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("debits_pending", BigInteger, nullable=False),
    Column("debits_posted", BigInteger, nullable=False),
    Column("credits_pending", BigInteger, nullable=False),
    Column("credits_posted", BigInteger, nullable=False),
    Column("checkpoint_id", BigInteger, nullable=False),
)

# Each account's version and balances after its last entry in an archived month (migration
# 0022): where its next entry's chain, and the full verification, continue from.
ledger_archived_accounts = Table(
    "ledger_archived_accounts",
    metadata,
    Column("account_id", Text, primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("debits_pending", BigInteger, nullable=False),
    Column("debits_posted", BigInteger, nullable=False),
    Column("credits_pending", BigInteger, nullable=False),
    Column("credits_posted", BigInteger, nullable=False),
    Column("month", Date, nullable=False),
)
