"""The retention purge as an activity, for the maintenance schedule (issue #23)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from kernel.settings import Settings
from services.retention import purge_expired
from workflows.models import PurgeInput, PurgeResult


class RetentionActivities:
    """Deletes what is kept only for a while: idempotency records, events, deliveries."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings

    @activity.defn(name="purge_expired_records")
    async def purge_expired_records(self, request: PurgeInput) -> PurgeResult:
        """Delete every record past its retention, in bounded batches (safe to retry or
        overlap: a batch deletes what is still there). Answers the counts by table."""
        report = await purge_expired(self._engine, self._settings)
        activity.logger.info("purged expired records: %s", report.as_dict())
        return PurgeResult(**report.as_dict())
