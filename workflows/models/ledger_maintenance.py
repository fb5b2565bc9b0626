"""Ledger housekeeping: expiring pending transfers, and the platform observation."""

# no `from __future__ import annotations`: the workflow sandbox resolves string annotations
# in sys.modules[cls.__module__], which only holds the modules a workflow imported itself
from dataclasses import dataclass


@dataclass
class ExpireInput:
    """A ledger maintenance pass; `verify_ledger` also recomputes the whole ledger."""

    verify_ledger: bool = False
    # also delete what is kept only for a while (idempotency records, events, deliveries):
    # its own hourly schedule sets it; a pass without it issues no purge command
    purge_expired: bool = False


@dataclass
class ExpireResult:
    """How many pending transfers the pass released."""

    expired: int = 0


@dataclass
class ObserveResult:
    """What a platform observation found (also exported as gauges)."""

    open_payments: int = 0
    ledger_ok: bool | None = None


@dataclass
class PurgeInput:
    """A retention purge (everything past its retention, in bounded batches)."""


@dataclass
class PurgeResult:
    """Rows deleted per table."""

    idempotency_keys: int = 0
    events: int = 0
    webhook_deliveries: int = 0
    # issue #17 (defaults: results recorded before them decode as they were)
    payment_details: int = 0
    legal_holds: int = 0


@dataclass
class PartitionInput:
    """A partition maintenance pass: create the months ahead that are missing."""


@dataclass
class PartitionResult:
    """How many partitions the pass created (0 when every month ahead had its own)."""

    created: int = 0
