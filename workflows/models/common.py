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
    # who decided, as the API authenticated them (tenant:name), and the token it minted for
    # this decision (kernel/review_tokens.py); empty in reviews sent before tokens existed
    reviewer_id: str = ""
    token: str = ""


@dataclass
class ReviewTokenInput:
    """A review to check before the workflow accepts it."""

    subject: str  # the workflow id
    decision: str
    reviewer: str
    reviewer_id: str
    token: str
    tenant_id: str = ""


@dataclass
class ReviewTokenCheck:
    """Whether the review came through the platform's door; why not, when it did not."""

    valid: bool
    reason: str = ""


@dataclass
class ReviewResult:
    """The status the payment moved to after the decision."""

    status: str
