"""Velocity limits by KYC risk tier: how much a customer may send in a rolling 24 hours.

Plain rules, no I/O: the activity gathers the customer's recent total and count, this module
says which limits the new payment would cross. Crossing one sends the payment to review
(never an automatic refusal: a reviewer can see a legitimate large payment through).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class TierLimits:
    """Daily amount (minor units) and count allowed for one risk tier."""

    daily_amount: int
    daily_count: int


# The limits by risk tier, as the settings give them (the caller builds the table).
LimitsTable = Mapping[str, TierLimits]


def limits_for(tier: str, table: LimitsTable) -> TierLimits:
    """The limits of a risk tier; an unknown or missing tier gets the strictest (high)."""
    return table.get(tier, table["high"])


def exceeded_limits(
    limits: TierLimits, *, amount: int, recent_amount: int, recent_count: int
) -> list[str]:
    """Explanations of every limit that `amount` on top of the last 24 hours would cross."""
    reasons = []
    if recent_amount + amount > limits.daily_amount:
        reasons.append(
            f"daily amount limit {limits.daily_amount} exceeded"
            f" ({recent_amount} in the last 24 h + {amount})"
        )
    if recent_count + 1 > limits.daily_count:
        reasons.append(
            f"daily count limit {limits.daily_count} exceeded ({recent_count} in the last 24 h)"
        )
    return reasons
