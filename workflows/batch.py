"""The payment batch workflow: one per batch, id = the batch id (`bat_…`), issue #19.

The API validated every item and stored the accepted ones with the batch. This workflow

1. waits, when the batch is above the review threshold, for one four-eyes `review` of the
   whole batch (workflows/review_gate.py: a token the API minted, a principal other than
   the one who sent it); a rejection cancels the batch;
2. starts the items' payments a page at a time (`start_batch_page`: each item becomes a
   payment through services/payments.py, with its own workflow, ledger hold and rail
   submission; its id derives from the batch id and the item index);
3. reads the items' progress every few seconds until every payment has finished, and ends
   `completed` with the counts by outcome, or `canceled` on the `cancel` signal (items not
   started are canceled, payments not yet submitted are asked to cancel, the rest finish).

History stays bounded whatever the size of the batch: the payments are not children (no
pending-children limit), one activity runs at a time (a page, a progress read), and the
workflow continues as new when Temporal suggests it or after `run_length` iterations,
carrying where it was in its input.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.models.batch import (
        APPROVED_SEQ,
        FINISHED_SEQ,
        BatchCancelInput,
        BatchInput,
        BatchProgress,
        BatchRef,
        BatchResult,
        BatchStatus,
        BatchStatusInput,
    )
    from workflows.models.common import ReviewInput, ReviewResult
    from workflows.models.payment import CancelInput
    from workflows.review_gate import pass_review_gate
    from workflows.steps import (
        CANCEL_BATCH_ITEMS,
        READ_BATCH_PROGRESS,
        RECORD_BATCH_STATUS,
        START_BATCH_PAGE,
    )


@workflow.defn(name="PaymentBatch")
class PaymentBatchWorkflow:
    """Approve once, start every item's payment, follow them to the end; see module docstring."""

    @workflow.init
    def __init__(self, batch: BatchInput) -> None:
        self._batch = batch
        self._approved = batch.approved or not batch.needs_review
        self._decision: ReviewInput | None = None
        self._cancel: CancelInput | None = (
            CancelInput(batch.cancel_requested_by, batch.cancel_reason)
            if batch.cancel_requested_by
            else None
        )
        self._progress = BatchProgress()

    @workflow.run
    async def run(self, batch: BatchInput) -> BatchResult:
        """Review (if needed), start the items, follow them; see module docstring."""
        if not self._approved:
            await workflow.wait_condition(
                lambda: self._decision is not None or self._cancel is not None
            )
            if self._cancel is not None:
                return await self._canceled(batch, self._cancel)
            assert self._decision is not None
            if self._decision.decision != "approve":
                # a rejected batch pays nothing: every item is canceled, audited as the review
                return await self._canceled(
                    batch,
                    CancelInput(self._decision.reviewer, self._decision.note),
                    decision=self._decision.decision,
                )
            await self._record(
                batch,
                BatchStatus.PROCESSING,
                APPROVED_SEQ,
                actor=self._decision.reviewer,
                decision="approve",
                note=self._decision.note,
            )
            self._approved = True
        all_started = batch.all_started
        for _ in range(batch.run_length):
            if self._cancel is not None:
                return await self._canceled(batch, self._cancel)
            if workflow.info().is_continue_as_new_suggested():
                break
            if not all_started:
                page = await START_BATCH_PAGE.run(BatchRef(batch.batch_id))
                all_started = not page.more
                continue
            self._progress = await READ_BATCH_PROGRESS.run(BatchRef(batch.batch_id))
            if self._progress.open == 0:
                return await self._finish(batch, BatchStatus.COMPLETED)
            # the next read after the interval, or at once on a cancel
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    lambda: self._cancel is not None,
                    timeout=timedelta(seconds=batch.progress_interval_seconds),
                )
        # a long batch: the next run starts from here with a fresh history
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            replace(
                batch,
                approved=True,
                all_started=all_started,
                cancel_requested_by=self._cancel.requested_by if self._cancel else "",
                cancel_reason=self._cancel.reason if self._cancel else "",
                run=batch.run + 1,
            )
        )

    async def _canceled(
        self, batch: BatchInput, request: CancelInput, *, decision: str = ""
    ) -> BatchResult:
        await CANCEL_BATCH_ITEMS.run(
            BatchCancelInput(batch.batch_id, request.requested_by, request.reason)
        )
        return await self._finish(
            batch,
            BatchStatus.CANCELED,
            actor=request.requested_by,
            decision=decision,
            note=request.reason,
        )

    async def _finish(
        self,
        batch: BatchInput,
        status: BatchStatus,
        *,
        actor: str = "",
        decision: str = "",
        note: str = "",
    ) -> BatchResult:
        self._progress = await READ_BATCH_PROGRESS.run(BatchRef(batch.batch_id))
        await self._record(
            batch,
            status,
            FINISHED_SEQ,
            actor=actor,
            decision=decision,
            note=note,
            counts=self._progress.counts,
        )
        return BatchResult(batch.batch_id, status.value, self._progress.counts)

    async def _record(
        self,
        batch: BatchInput,
        status: BatchStatus,
        seq: int,
        *,
        actor: str = "",
        decision: str = "",
        note: str = "",
        counts: dict[str, int] | None = None,
    ) -> None:
        await RECORD_BATCH_STATUS.run(
            BatchStatusInput(
                batch_id=batch.batch_id,
                status=status.value,
                seq=seq,
                at=workflow.now().isoformat(),
                actor=actor,
                decision=decision,
                note=note,
                counts=counts or {},
            )
        )

    @workflow.update
    async def review(self, review: ReviewInput) -> ReviewResult:
        """Approve or reject the whole batch (four-eyes; only while it waits in review)."""
        await pass_review_gate(
            review, tenant_id=self._batch.tenant_id, initiator=self._batch.initiated_by
        )
        if self._decision is not None or self._approved:
            raise ApplicationError("the batch was decided meanwhile", type="not_in_review")
        self._decision = review
        approved = review.decision == "approve"
        status = BatchStatus.PROCESSING if approved else BatchStatus.CANCELED
        return ReviewResult(status=status.value)

    @review.validator
    def _validate_review(self, review: ReviewInput) -> None:
        if self._approved or self._decision is not None or self._cancel is not None:
            raise ApplicationError("the batch is not in review", type="not_in_review")
        if review.decision not in ("approve", "reject"):
            raise ApplicationError("decision must be approve or reject", type="invalid_decision")

    @workflow.signal
    def cancel(self, request: CancelInput) -> None:
        """Cancel the batch: items not started are canceled, payments not yet submitted are
        asked to cancel, the others finish (the first cancel counts)."""
        if self._cancel is None:
            self._cancel = request

    @workflow.query
    def progress(self) -> BatchProgress:
        """The items' counts by status at the last progress read."""
        return self._progress
