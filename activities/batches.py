"""The payment batch workflow's side effects (workflows/batch.py): start a page of items,
read progress, record statuses, cancel. Each is a call into services/batches.py, which holds
the rules; every one is safe to retry (derived ids, conditional updates)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client

from activities.metrics import add, count, gauge
from kernel.settings import Settings
from services import batches
from services.events import DeliveryStarter
from workflows.models import (
    BatchCancelInput,
    BatchCancelResult,
    BatchPageResult,
    BatchProgress,
    BatchRef,
    BatchStatusInput,
)


class BatchActivities:
    """Runs a batch's steps against the database and Temporal."""

    def __init__(self, engine: AsyncEngine, client: Client, settings: Settings) -> None:
        self._engine = engine
        self._client = client
        self._settings = settings
        self._deliveries = DeliveryStarter(client, settings)

    @activity.defn(name="start_batch_page")
    async def start_batch_page(self, batch: BatchRef) -> BatchPageResult:
        """Make the payments of the batch's next page of pending items."""
        result = await batches.start_batch_page(
            self._engine, self._client, self._settings, batch.batch_id
        )
        add("payments_batch_items_started", "Payments made from batch items.", result.started)
        return result

    @activity.defn(name="read_batch_progress")
    async def read_batch_progress(self, batch: BatchRef) -> BatchProgress:
        """The batch's items by status."""
        progress = await batches.batch_progress(self._engine, batch.batch_id)
        total = sum(progress.counts.values())
        gauge("payments_batch_items", "Items of a running batch.", total, batch_id=batch.batch_id)
        gauge(
            "payments_batch_items_open",
            "Items of a running batch whose payment has not finished.",
            progress.open,
            batch_id=batch.batch_id,
        )
        return progress

    @activity.defn(name="record_batch_status")
    async def record_batch_status(self, change: BatchStatusInput) -> None:
        """Record the batch's new status, its event and its audit record."""
        await batches.record_batch_status(self._engine, self._deliveries, change)
        count("payments_batches", "Batch status transitions.", status=change.status)

    @activity.defn(name="cancel_batch_items")
    async def cancel_batch_items(self, request: BatchCancelInput) -> BatchCancelResult:
        """Cancel what of the batch has not started; ask its payments to cancel."""
        return await batches.cancel_batch_items(self._engine, self._client, request)
