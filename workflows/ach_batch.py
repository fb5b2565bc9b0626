"""The ACH batch workflow: one per origination window, id `ach-batch-<window id>`.

Payments join with the `add_entry` update (through update-with-start, so the first payment
of a window starts it) until the window's submit time; then the workflow sends one NACHA
file for all of them and tells each payment how the bank took it (`rail_event` signal:
ACCP, RJCT for a refused file, NOTSENT when the bank stayed unreachable). An entry refused
alone (invalid on its own, or named by the bank) gets RJCT with its own reason code while
the others go out. Settlement and
returns reach the payments directly from the bank's callbacks, by trace number.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.models.ach import (
        AchBatchInput,
        AchEntryInput,
        AchEntryResult,
        AchFileInput,
        AchFileResult,
    )
    from workflows.models.payment import OutcomeInput, RailEvent
    from workflows.models.vocabulary import BankRecord, RailStatus
    from workflows.patches import ASK_BANK_FOR_FILE, is_patched
    from workflows.steps import ASK_RAIL_OUTCOME, SUBMIT_ACH_FILE


def batch_workflow_id(window_id: str) -> str:
    """The workflow id of a window's batch."""
    return f"ach-batch-{window_id}"


@workflow.defn(name="AchBatch")
class AchBatchWorkflow:
    """Collects a window's ACH entries and submits them as one file; see module docstring."""

    @workflow.init
    def __init__(self, batch: AchBatchInput) -> None:
        self._batch = batch
        self._entries: dict[str, AchEntryInput] = {}
        self._closed = False

    @workflow.run
    async def run(self, batch: AchBatchInput) -> AchFileResult:
        """Wait for the submit time, send the file, tell every payment."""
        wait = datetime.fromisoformat(batch.submit_at) - workflow.now()
        if wait > timedelta(0):
            await workflow.sleep(wait)
        self._closed = True
        # an update accepted just before closing finishes first: its payment is in the file
        await workflow.wait_condition(workflow.all_handlers_finished)
        entries = sorted(self._entries.values(), key=lambda entry: entry.trace_number)
        if not entries:
            return AchFileResult(batch.file_id, status=RailStatus.EMPTY)
        try:
            # the budget is the step's, with the configured number of attempts
            budget = replace(SUBMIT_ACH_FILE.retry, maximum_attempts=batch.submit_max_attempts)
            result = await SUBMIT_ACH_FILE.run(AchFileInput(batch, entries), retry=budget)
        except ActivityError as err:
            refused = isinstance(err.cause, ApplicationError) and err.cause.type == "file_refused"
            if refused:
                status = RailStatus.REJECTED
            elif is_patched(ASK_BANK_FOR_FILE):
                status = await self._file_fate(batch.file_id)
            else:
                status = RailStatus.NOT_SENT
            result = AchFileResult(batch.file_id, status=status, reason=str(err.cause or err)[:200])
        event = RailEvent(
            batch.file_id, result.status, "FF01" if result.status == RailStatus.REJECTED else None
        )
        # an entry refused alone is rejected alone, with its own reason; the others get the
        # file's status. No patch: a history from before `refused` existed reads it as empty
        # and sends exactly the signals it sent (tests/replay).
        refused_alone = {entry.payment_id: entry.reason for entry in result.refused}
        for entry in entries:
            handle = workflow.get_external_workflow_handle(entry.payment_id)
            reason = refused_alone.get(entry.payment_id)
            try:
                await handle.signal(
                    "rail_event",
                    event
                    if reason is None
                    else RailEvent(batch.file_id, RailStatus.REJECTED, reason),
                )
            except ApplicationError:
                # the payment workflow is gone (terminated by ops): nothing left to tell
                workflow.logger.warning("payment %s not signaled", entry.payment_id)
        return result

    async def _file_fate(self, file_id: str) -> RailStatus:
        """No answer to the file's submission: it may be at the bank all the same. Ask: at
        the bank (ACCP), never received (NOTSENT), or UNKNOWN when it cannot be asked, in
        which case nothing in the file may be sent again or released until it can."""
        try:
            answer = await ASK_RAIL_OUTCOME.run(OutcomeInput("ach", "", file_id))
        except ActivityError as err:
            workflow.logger.warning("file %s: the bank could not be asked: %s", file_id, err.cause)
            return RailStatus.UNKNOWN
        if answer.record == BankRecord.RECEIVED:
            return RailStatus.ACCEPTED
        return RailStatus.NOT_SENT

    @workflow.update
    def add_entry(self, entry: AchEntryInput) -> AchEntryResult:
        """Put a payment in this window's file (idempotent per payment)."""
        self._entries.setdefault(entry.payment_id, entry)
        return AchEntryResult(self._batch.file_id, self._entries[entry.payment_id].trace_number)

    @add_entry.validator
    def _validate_add_entry(self, entry: AchEntryInput) -> None:
        if self._closed and entry.payment_id not in self._entries:
            raise ApplicationError("the window's file is being sent", type="window_closed")

    @workflow.query
    def entries(self) -> list[str]:
        """Payment ids in this window's file so far."""
        return list(self._entries)
