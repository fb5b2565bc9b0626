"""Ledger activities of a payment: hold, post, void.

Transfer ids are `<payment id>:<step>`, so an activity retried after a crash re-sends the
same id and the ledger answers `exists` instead of moving money again. Holds go to one
shard of the rail's settlement account (chosen by payment id), so concurrent payments do not
queue on one hot row; post and void inherit the hold's accounts.
"""

from __future__ import annotations

import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.metrics import count
from ledger import (
    Transfer,
    TransferKind,
    TransferResult,
    create_transfer,
    create_transfers,
    expire_pending_transfers,
    failure_of,
)
from ledger.batcher import TransferBatcher
from ledger.models import blocked_funds_account_id, settlement_account_id, shard_of
from services.verification import verify_audit_trail, verify_books
from workflows.models import (
    ActionReason,
    ExpireInput,
    ExpireResult,
    LedgerInput,
    LedgerResult,
    ObserveResult,
)

OPEN_STATUSES = ("processing", "in_review", "submitted", "action_required")
ACTION_REASONS = text(
    "SELECT action_reason, count(*) AS n FROM payments"
    " WHERE status = 'action_required' AND action_reason IS NOT NULL GROUP BY action_reason"
)
OPEN_PAYMENTS = text(
    "SELECT status, count(*) AS n,"
    " extract(epoch FROM now() - min(updated_at)) AS oldest_seconds"
    " FROM payments WHERE status IN ('processing', 'in_review', 'submitted', 'action_required')"
    " GROUP BY status"
)


def hold_id(payment_id: str) -> str:
    """Transfer id of a payment's hold."""
    return f"{payment_id}:hold"


def _count(step: str, result: TransferResult) -> None:
    count("payments_ledger_transfers", "Ledger transfers", step=step, result=result.value)


def _refused(transfer_id: str, result: TransferResult) -> ApplicationError:
    # The payment and the ledger disagree: stop loudly rather than guess (non-retryable:
    # retrying cannot change the answer).
    return ApplicationError(
        f"ledger refused transfer {transfer_id}: {result.value}",
        type="ledger_refused",
        non_retryable=True,
    )


class LedgerActivities:
    """Moves a payment's money in the ledger."""

    def __init__(self, engine: AsyncEngine, batcher: TransferBatcher | None = None) -> None:
        self._engine = engine
        # the worker's micro-batcher: concurrent payments' holds and posts in one round trip
        self._batcher = batcher

    async def _create(self, transfer: Transfer) -> TransferResult:
        """One unlinked transfer: in the next batch when batching, else alone."""
        if self._batcher is not None:
            return await self._batcher.create(transfer)
        return await create_transfer(self._engine, transfer)

    @activity.defn(name="hold_funds")
    async def hold_funds(self, request: LedgerInput) -> LedgerResult:
        """Reserve the amount on the debtor's account (pending transfer to settlement)."""
        transfer = Transfer(
            id=hold_id(request.payment_id),
            debit_account_id=request.account_id,
            credit_account_id=shard_of(
                settlement_account_id(request.rail, request.currency), request.payment_id
            ),
            amount=request.amount,
            currency=request.currency,
            code="payment_hold",
            kind=TransferKind.PENDING,
        )
        result = await self._create(transfer)
        _count("hold", result)
        if result is TransferResult.ID_ALREADY_FAILED:
            # a retry after the first attempt was refused: report the original refusal
            result = await failure_of(self._engine, transfer.id) or result
        if result.succeeded or result is TransferResult.EXCEEDS_CREDITS:
            return LedgerResult(transfer.id, result.value)
        raise _refused(transfer.id, result)

    async def _resolve(self, request: LedgerInput, kind: TransferKind, step: str) -> LedgerResult:
        transfer = Transfer(
            id=f"{request.payment_id}:{step}",
            debit_account_id=None,  # inherited from the hold
            credit_account_id=None,
            amount=None,
            currency=None,
            code=f"payment_{step}",
            kind=kind,
            pending_id=hold_id(request.payment_id),
        )
        result = await self._create(transfer)
        _count(step, result)
        if not result.succeeded:
            raise _refused(transfer.id, result)
        return LedgerResult(transfer.id, result.value)

    @activity.defn(name="post_hold")
    async def post_hold(self, request: LedgerInput) -> LedgerResult:
        """The rail settled: the reservation becomes a posted debit."""
        return await self._resolve(request, TransferKind.POST_PENDING, "post")

    @activity.defn(name="void_hold")
    async def void_hold(self, request: LedgerInput) -> LedgerResult:
        """The payment will not go out: release the reservation."""
        return await self._resolve(request, TransferKind.VOID_PENDING, "void")

    @activity.defn(name="block_funds")
    async def block_funds(self, request: LedgerInput) -> LedgerResult:
        """A confirmed sanctions hit: the held amount moves to the blocked-funds account.

        OFAC blocking means the money may neither go out nor go back to the customer. The
        hold's void and the transfer to blocked funds are one linked batch: both or neither.
        """
        batch = [
            Transfer(
                id=f"{request.payment_id}:void",
                debit_account_id=None,
                credit_account_id=None,
                amount=None,
                currency=None,
                code="payment_void",
                kind=TransferKind.VOID_PENDING,
                pending_id=hold_id(request.payment_id),
                linked=True,
            ),
            Transfer(
                id=f"{request.payment_id}:block",
                debit_account_id=request.account_id,
                credit_account_id=blocked_funds_account_id(request.currency),
                amount=request.amount,
                currency=request.currency,
                code="sanctions_block",
            ),
        ]
        results = await create_transfers(self._engine, batch)
        _count("block", results[1])
        for transfer, result in zip(batch, results, strict=True):
            if not result.succeeded:
                raise _refused(transfer.id, result)
        return LedgerResult(batch[1].id, results[1].value)

    @activity.defn(name="reverse_payment")
    async def reverse_payment(self, request: LedgerInput) -> LedgerResult:
        """The receiving bank returned a settled payment: credit the debtor back."""
        transfer = Transfer(
            id=f"{request.payment_id}:return",
            debit_account_id=shard_of(
                settlement_account_id(request.rail, request.currency), request.payment_id
            ),
            credit_account_id=request.account_id,
            amount=request.amount,
            currency=request.currency,
            code="payment_return",
        )
        result = await self._create(transfer)
        _count("return", result)
        if not result.succeeded:
            raise _refused(transfer.id, result)
        return LedgerResult(transfer.id, result.value)

    @activity.defn(name="expire_pending_transfers")
    async def expire_pending(self, _: ExpireInput) -> ExpireResult:
        """Release every pending transfer whose timeout has passed."""
        return ExpireResult(await expire_pending_transfers(self._engine))

    @activity.defn(name="observe_platform")
    async def observe_platform(self, request: ExpireInput) -> ObserveResult:
        """Export gauges the alert rules watch: open payments by status (count, oldest age)
        and, when asked, whether the ledger and the audit chain written since their last
        checkpoints verify (a new checkpoint when they do)."""
        meter = activity.metric_meter()
        in_status = meter.create_gauge("payments_in_status", "Open payments by status")
        oldest = meter.create_gauge_float(
            "payments_oldest_in_status_seconds", "Age of the oldest payment in each status", "s"
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(OPEN_PAYMENTS)).all()
        found = {row.status: row for row in rows}
        for status in OPEN_STATUSES:
            row = found.get(status)
            in_status.set(row.n if row else 0, {"status": status})
            oldest.set(float(row.oldest_seconds) if row else 0.0, {"status": status})
        waiting = meter.create_gauge(
            "payments_action_required", "Payments waiting for ops, by why (action_reason)"
        )
        async with self._engine.connect() as conn:
            reasons = {row.action_reason: row.n for row in await conn.execute(ACTION_REASONS)}
        for reason in ActionReason:
            waiting.set(reasons.get(reason.value, 0), {"reason": reason.value})
        result = ObserveResult(open_payments=sum(row.n for row in rows))
        if request.verify_ledger:
            # incremental: what was written since the last checkpoint (a full run reads the
            # whole history and grows with it; `payments ledger verify --full` does that)
            books = await verify_books(self._engine, full=False, actor="ledger-maintenance")
            trail = await verify_audit_trail(self._engine, full=False, actor="ledger-maintenance")
            meter.create_gauge("payments_ledger_verify_ok", "1 if the ledger verifies").set(
                int(books.ok)
            )
            meter.create_gauge("payments_audit_verify_ok", "1 if the audit chain verifies").set(
                int(trail.ok)
            )
            meter.create_gauge_float(
                "payments_ledger_verify_last_run_timestamp_seconds", "Last ledger verification"
            ).set(time.time())
            result.ledger_ok = books.ok
            for outcome, what in ((books, "ledger"), (trail, "audit")):
                if not outcome.ok:
                    activity.logger.error("%s verification failed: %s", what, outcome.problems[0])
        return result
