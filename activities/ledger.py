"""Ledger activities of a payment: hold, post, void.

Transfer ids are `<payment id>:<step>`, so an activity retried after a crash re-sends the
same id and the ledger answers `exists` instead of moving money again.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from ledger import Transfer, TransferKind, TransferResult, create_transfer
from ledger.models import settlement_account_id
from workflows.models import LedgerInput, LedgerResult

HOLD_OUTCOMES = {TransferResult.OK, TransferResult.EXISTS, TransferResult.EXCEEDS_CREDITS}
RESOLVE_OUTCOMES = {TransferResult.OK, TransferResult.EXISTS}


def hold_id(payment_id: str) -> str:
    """Transfer id of a payment's hold."""
    return f"{payment_id}:hold"


class LedgerActivities:
    """Moves a payment's money in the ledger."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def _transfer(self, transfer: Transfer, allowed: set[TransferResult]) -> LedgerResult:
        result = await create_transfer(self._engine, transfer)
        if result not in allowed:
            # Anything else means the payment and the ledger disagree: stop loudly rather
            # than guess (non-retryable: retrying cannot change the answer).
            raise ApplicationError(
                f"ledger refused transfer {transfer.id}: {result.value}",
                type="ledger_refused",
                non_retryable=True,
            )
        return LedgerResult(transfer.id, result.value)

    @activity.defn(name="hold_funds")
    async def hold_funds(self, request: LedgerInput) -> LedgerResult:
        """Reserve the amount on the debtor's account (pending transfer to settlement)."""
        transfer = Transfer(
            id=hold_id(request.payment_id),
            debit_account_id=request.account_id,
            credit_account_id=settlement_account_id(request.rail, request.currency),
            amount=request.amount,
            currency=request.currency,
            code="payment_hold",
            kind=TransferKind.PENDING,
        )
        return await self._transfer(transfer, HOLD_OUTCOMES)

    async def _resolve(self, request: LedgerInput, kind: TransferKind, step: str) -> LedgerResult:
        transfer = Transfer(
            id=f"{request.payment_id}:{step}",
            debit_account_id=request.account_id,
            credit_account_id=settlement_account_id(request.rail, request.currency),
            amount=request.amount,
            currency=request.currency,
            code=f"payment_{step}",
            kind=kind,
            pending_id=hold_id(request.payment_id),
        )
        return await self._transfer(transfer, RESOLVE_OUTCOMES)

    @activity.defn(name="post_hold")
    async def post_hold(self, request: LedgerInput) -> LedgerResult:
        """The rail settled: the reservation becomes a posted debit."""
        return await self._resolve(request, TransferKind.POST_PENDING, "post")

    @activity.defn(name="void_hold")
    async def void_hold(self, request: LedgerInput) -> LedgerResult:
        """The payment will not go out: release the reservation."""
        return await self._resolve(request, TransferKind.VOID_PENDING, "void")
