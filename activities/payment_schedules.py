"""A payment schedule's run (workflows/scheduled_payment.py): make the run's payment through
services/payment_schedules.py, which holds the rules; safe to retry (the payment id derives
from the schedule id and the run's nominal time)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client

from activities.metrics import count
from kernel.settings import Settings
from services import payment_schedules
from workflows.models import ScheduledPaymentInput, ScheduledPaymentResult


class PaymentScheduleActivities:
    """Runs a schedule's step against the database and Temporal."""

    def __init__(self, engine: AsyncEngine, client: Client, settings: Settings) -> None:
        self._engine = engine
        self._client = client
        self._settings = settings

    @activity.defn(name="make_scheduled_payment")
    async def make_scheduled_payment(self, run: ScheduledPaymentInput) -> ScheduledPaymentResult:
        """Make the payment of one run of a payment schedule (once)."""
        result = await payment_schedules.make_scheduled_payment(
            self._engine,
            self._client,
            self._settings,
            run.schedule_id,
            datetime.fromisoformat(run.nominal_time),
        )
        count(
            "payments_schedule_runs",
            "Runs of payment schedules, by outcome.",
            outcome="payment" if result.payment_id else result.refused or result.skipped,
        )
        return result
