"""The double-entry ledger: posting rules in plain Python over PostgreSQL (DESIGN §4).

No Temporal here: activities call these functions; tests call them directly.
"""

from ledger.engine import (
    account_from_row,
    create_transfer,
    create_transfer_in,
    get_account,
    open_account,
)
from ledger.models import Account, Transfer, TransferKind, TransferResult

__all__ = [
    "Account",
    "Transfer",
    "TransferKind",
    "TransferResult",
    "account_from_row",
    "create_transfer",
    "create_transfer_in",
    "get_account",
    "open_account",
]
