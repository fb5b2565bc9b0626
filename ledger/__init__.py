"""The double-entry ledger: posting rules in PostgreSQL, a thin Python API (DESIGN §4).

No Temporal here: activities call these functions; tests call them directly. The rules are
specified in `ledger.models` and implemented in `ledger/sql/`.
"""

from ledger.engine import (
    account_entries,
    account_from_row,
    create_accounts,
    create_transfer,
    create_transfers,
    create_transfers_in,
    expire_pending_transfers,
    failure_of,
    get_account,
    open_account,
)
from ledger.models import Account, AccountSpec, Entry, Transfer, TransferKind, TransferResult
from ledger.verify import VerifyReport, verify_ledger

__all__ = [
    "Account",
    "AccountSpec",
    "Entry",
    "Transfer",
    "TransferKind",
    "TransferResult",
    "VerifyReport",
    "account_entries",
    "account_from_row",
    "create_accounts",
    "create_transfer",
    "create_transfers",
    "create_transfers_in",
    "expire_pending_transfers",
    "failure_of",
    "get_account",
    "open_account",
    "verify_ledger",
]
