"""Partitions created ahead, as an activity for the daily schedule (issue #23)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from kernel.settings import Settings
from services.partitions import ensure_partitions
from workflows.models import PartitionInput, PartitionResult


class PartitionActivities:
    """Creates the monthly partitions of the months ahead."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings

    @activity.defn(name="ensure_partitions")
    async def ensure_partitions(self, request: PartitionInput) -> PartitionResult:
        """Create this month's and the next months' partitions where missing (idempotent)."""
        created = await ensure_partitions(
            self._engine, self._settings.retention.partition_months_ahead
        )
        activity.logger.info("partitions created ahead: %d", created)
        return PartitionResult(created=created)
