"""Types the payment and onboarding workflows share: screening hits and reviews."""

# no `from __future__ import annotations`: the workflow sandbox resolves string annotations
# in sys.modules[cls.__module__], which only holds the modules a workflow imported itself
from dataclasses import dataclass


@dataclass
class ScreeningHit:
    """One potential sanctions match, explained."""

    party: str
    list_name: str
    list_version: str
    entity_id: str
    matched_name: str
    score: float
    decision: str = ""  # review | block
    explanation: str = ""


@dataclass
class ReviewInput:
    """A compliance decision on a payment in review."""

    decision: str  # "approve" | "reject"
    reviewer: str
    note: str = ""


@dataclass
class ReviewResult:
    """The status the payment moved to after the decision."""

    status: str
