"""KYC rules for a customer at onboarding (DESIGN §5; the full onboarding workflow comes later).

The rules are deliberately simple and explainable: each failed rule adds a reason, and the
outcome is the worst outcome any rule asks for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

KycStatus = Literal["approved", "in_review", "rejected"]
RiskTier = Literal["low", "medium", "high"]

# Comprehensively sanctioned jurisdictions: no onboarding at all.
PROHIBITED_COUNTRIES = frozenset({"CU", "IR", "KP", "SY"})
# FATF "increased monitoring"-style list: onboarding allowed, at high risk and with review.
HIGH_RISK_COUNTRIES = frozenset({"AF", "MM", "RU", "BY", "VE", "YE"})
REVIEW_INTERVAL_DAYS: dict[RiskTier, int] = {"low": 3 * 365, "medium": 2 * 365, "high": 365}
MINIMUM_AGE_YEARS = 18


@dataclass(frozen=True)
class CustomerFacts:
    """What the rules look at."""

    type: Literal["individual", "business"]
    name: str
    country: str
    date_of_birth: date | None = None
    registration_number: str | None = None


@dataclass(frozen=True)
class KycDecision:
    """Outcome of the KYC rules, with the reasons that explain it."""

    status: KycStatus
    risk_tier: RiskTier
    review_date: date
    reasons: list[str] = field(default_factory=list)


def _age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def evaluate(facts: CustomerFacts, today: date) -> KycDecision:
    """Apply the KYC rules to a customer as of `today`."""
    reasons: list[str] = []
    status: KycStatus = "approved"
    tier: RiskTier = "low"
    if facts.type == "individual":
        if facts.date_of_birth is None:
            reasons.append("date_of_birth is required for individuals")
            status = "rejected"
        elif _age_on(facts.date_of_birth, today) < MINIMUM_AGE_YEARS:
            reasons.append(f"individual is younger than {MINIMUM_AGE_YEARS}")
            status = "rejected"
    elif not facts.registration_number:
        reasons.append("registration_number is required for businesses")
        status = "rejected"
    if facts.country in PROHIBITED_COUNTRIES:
        reasons.append(f"country {facts.country} is prohibited")
        status = "rejected"
        tier = "high"
    elif facts.country in HIGH_RISK_COUNTRIES:
        reasons.append(f"country {facts.country} is high risk")
        tier = "high"
        if status == "approved":
            status = "in_review"
    elif facts.type == "business":
        tier = "medium"
    return KycDecision(
        status=status,
        risk_tier=tier,
        review_date=today + timedelta(days=REVIEW_INTERVAL_DAYS[tier]),
        reasons=reasons,
    )
