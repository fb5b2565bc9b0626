"""The daily reconciliation of bank statements against the ledger."""

# no `from __future__ import annotations`: the workflow sandbox resolves string annotations
# in sys.modules[cls.__module__], which only holds the modules a workflow imported itself
from dataclasses import dataclass, field


@dataclass
class ReconcileInput:
    """Reconcile one rail's statement of one day (empty date: yesterday, UTC)."""

    statement_date: str = ""
    # plain strings: services/reconciliation.py hands in the rails it was asked for
    rails: list[str] = field(default_factory=lambda: ["sepa", "ach"])


@dataclass
class ReconcileRailInput:
    """One rail's statement of one day."""

    statement_date: str
    rail: str


@dataclass
class ReconcileResult:
    """A stored reconciliation run."""

    run_id: str
    rail: str
    statement_date: str
    matched: int
    discrepancies: int
