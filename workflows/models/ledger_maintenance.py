"""Ledger housekeeping: expiring pending transfers, and the platform observation."""

# no `from __future__ import annotations`: the workflow sandbox resolves string annotations
# in sys.modules[cls.__module__], which only holds the modules a workflow imported itself
from dataclasses import dataclass


@dataclass
class ExpireInput:
    """A ledger maintenance pass; `verify_ledger` also recomputes the whole ledger."""

    verify_ledger: bool = False


@dataclass
class ExpireResult:
    """How many pending transfers the pass released."""

    expired: int = 0


@dataclass
class ObserveResult:
    """What a platform observation found (also exported as gauges)."""

    open_payments: int = 0
    ledger_ok: bool | None = None
