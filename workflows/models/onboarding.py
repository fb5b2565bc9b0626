"""Customer onboarding (issue #4): KYC, screening of the customer, review."""

# no `from __future__ import annotations`: the workflow sandbox resolves string annotations
# in sys.modules[cls.__module__], which only holds the modules a workflow imported itself
from dataclasses import dataclass, field

from workflows.models.common import ScreeningHit


@dataclass
class OnboardingInput:
    """Start a customer's onboarding; the workflow id is `customer_id`.

    The customer's facts stay in the database (the activities read them by id), so the
    workflow history carries no more personal data than it needs.
    """

    customer_id: str
    tenant_id: str
    # the principal who created the customer: four-eyes, they cannot review it
    created_by: str
    # a review left waiting this long is escalated (flagged; never decided automatically)
    review_escalation_seconds: float = 86400.0


@dataclass
class CustomerRef:
    """Which customer an onboarding step works on."""

    customer_id: str
    tenant_id: str


@dataclass
class CustomerScreeningResult:
    """A customer's sanctions and PEP matches, and the list versions screened against."""

    list_versions: dict[str, str] = field(default_factory=dict)
    sanctions_hits: list[ScreeningHit] = field(default_factory=list)
    pep_hits: list[ScreeningHit] = field(default_factory=list)

    @property
    def hits(self) -> list[ScreeningHit]:
        """Every match, sanctions first (derived: not part of the payload)."""
        return self.sanctions_hits + self.pep_hits


@dataclass
class KycEvaluationInput:
    """Apply the KYC rules to a customer as of `as_of` (an ISO date, workflow time)."""

    customer_id: str
    tenant_id: str
    as_of: str
    screening: CustomerScreeningResult = field(default_factory=CustomerScreeningResult)


@dataclass
class KycEvaluation:
    """A KYC outcome: status, risk tier, re-verification date (ISO), and why."""

    status: str
    risk_tier: str
    review_date: str
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class RecordKycInput:
    """A KYC decision to persist: customer row and audit entry (idempotent per step)."""

    customer_id: str
    tenant_id: str
    # "rules" (the automatic decision) or "review" (a person's decision)
    step: str
    evaluation: KycEvaluation
    decided_at: str
    decided_by: str
    note: str = ""
    screening: CustomerScreeningResult | None = None


@dataclass
class KycEscalationInput:
    """A customer review that has waited past the escalation time."""

    customer_id: str
    tenant_id: str
    waited_seconds: float
    reasons: list[str] = field(default_factory=list)


@dataclass
class OnboardingView:
    """The onboarding workflow's `status` query answer."""

    customer_id: str
    status: str
    risk_tier: str = ""
    review_date: str = ""
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hits: list[ScreeningHit] = field(default_factory=list)
    list_versions: dict[str, str] = field(default_factory=dict)
    escalated: bool = False
    reviewed_by: str = ""
