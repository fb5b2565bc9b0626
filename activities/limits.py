"""Velocity-limit activity: would this payment take its customer over a daily limit? And is
its saved counterparty (if it names one) verified and clear?"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from activities.metrics import count
from compliance.limits import LimitsTable, TierLimits, exceeded_limits, limits_for
from kernel.db import autocommit
from kernel.settings import LimitSettings
from services.counterparties import review_reasons
from workflows.models import LimitsInput, LimitsResult

# The customer's tier, and what counts against the limit: payments of the last 24 h that may
# still move money (failed, rejected, canceled and returned ones moved none, or gave it back).
RECENT_PAYMENTS = text(
    "SELECT coalesce(sum(amount), 0) AS total, count(*) AS n,"
    " EXISTS (SELECT 1 FROM payments WHERE id = :payment) AS committed,"
    " (SELECT kyc_risk_tier FROM customers WHERE tenant_id = :tenant AND id = :customer)"
    " AS tier,"
    # a payment to a saved counterparty: how far it is verified, and its screening
    " (SELECT c.verification_status FROM payments p JOIN counterparties c"
    " ON c.id = p.counterparty_id WHERE p.id = :payment) AS counterparty_verification,"
    " (SELECT c.screening_decision FROM payments p JOIN counterparties c"
    " ON c.id = p.counterparty_id WHERE p.id = :payment) AS counterparty_screening"
    " FROM payments"
    " WHERE tenant_id = :tenant AND customer_id = :customer AND currency = :currency"
    " AND id <> :payment AND created_at > now() - interval '24 hours'"
    " AND status NOT IN ('failed', 'rejected', 'canceled', 'returned')"
)


def tier_limits(limits: LimitSettings) -> LimitsTable:
    """The velocity-limit table the settings configure, by KYC risk tier."""
    return {
        "low": TierLimits(limits.daily_amount_low, limits.daily_count_low),
        "medium": TierLimits(limits.daily_amount_medium, limits.daily_count_medium),
        "high": TierLimits(limits.daily_amount_high, limits.daily_count_high),
    }


class PaymentNotCommittedError(Exception):
    """The payment row is not visible: the API starts the workflow before the transaction
    that inserts it (services/payments.initiate_payment), so this step may run before the
    commit. Retried. This is the last step before the hold, so if that transaction rolled
    back (the client's retry with the same key joins this workflow and commits the row), no
    money moves for a payment that does not exist."""


class LimitActivities:
    """Reads the customer's tier and recent payments; the rules live in compliance.limits."""

    def __init__(self, engine: AsyncEngine, limits: LimitsTable) -> None:
        self._engine = engine
        self._limits = limits

    @activity.defn(name="check_payment_limits")
    async def check_payment_limits(self, request: LimitsInput) -> LimitsResult:
        """The limits this payment would exceed (empty: within limits)."""
        async with autocommit(self._engine) as conn:  # one read: no BEGIN, no ROLLBACK
            recent = (
                await conn.execute(
                    RECENT_PAYMENTS,
                    {
                        "tenant": request.tenant_id,
                        "customer": request.customer_id,
                        "currency": request.currency,
                        "payment": request.payment_id,
                    },
                )
            ).one()
        if not recent.committed:
            raise PaymentNotCommittedError(request.payment_id)
        tier = recent.tier or "high"
        reasons = exceeded_limits(
            limits_for(tier, self._limits),
            amount=request.amount,
            recent_amount=int(recent.total),
            recent_count=int(recent.n),
        )
        if reasons:
            count("payments_limit_reviews", "Payments sent to review by velocity limits", tier=tier)
        # Review reasons of the counterparty ride with the limits' (no new workflow command:
        # the payment goes to review with these reasons, and a reviewer decides).
        reasons += review_reasons(recent.counterparty_verification, recent.counterparty_screening)
        return LimitsResult(reasons, tier)
