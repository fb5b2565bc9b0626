"""KYC activity: is the debtor allowed to pay right now?"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from kernel.db import autocommit
from kernel.tables import customers
from workflows.models import KycCheckInput, KycCheckResult


class KycActivities:
    """Reads the customer's stored KYC outcome (decided at onboarding)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @activity.defn(name="check_debtor_kyc")
    async def check_debtor_kyc(self, request: KycCheckInput) -> KycCheckResult:
        """Approved only if KYC is `approved` and its review date has not passed."""
        async with autocommit(self._engine) as conn:  # one read: no BEGIN, no ROLLBACK
            row = (
                await conn.execute(
                    select(customers).where(
                        customers.c.id == request.customer_id,
                        customers.c.tenant_id == request.tenant_id,
                    )
                )
            ).first()
        if row is None:
            return KycCheckResult(False, "unknown", "", ["customer not found"])
        expired = row.kyc_review_date is not None and row.kyc_review_date < datetime.now(UTC).date()
        status = "expired" if expired and row.kyc_status == "approved" else row.kyc_status
        return KycCheckResult(
            status == "approved", status, row.name, list(row.kyc_reasons), row.country
        )
