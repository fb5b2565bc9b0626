"""Deposits: ops credit incoming funds to a customer account, exactly once.

The deposit row, its ledger transfer (from the currency's funding account), its event, its
audit record and the answer to its request (`record`, the Idempotency-Key's record) commit
in one unit of work. The deposit id derives from the tenant and the Idempotency-Key, and the
transfer id is the deposit id, so however often a request is retried or taken over
(api/idempotency.py), the money moves once.

A deposit above `deposit_review_threshold` is made `pending_review` with no ledger credit;
a second ops principal (four-eyes: neither the creator's principal nor its key) approves it
(the credit is made then, with the same transfer id) or rejects it (nothing is credited).

The deposit names the bank's reference of the incoming credit it books (`bank_reference`),
which reconciliation matches with the bank statement (activities/reconciliation.py); a
reference can back one live deposit only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kernel.ids import derived_id
from kernel.tables import deposits
from ledger import Transfer, TransferResult, create_transfers_in
from ledger.models import funding_account_id, shard_of
from services.errors import ConflictError, ForbiddenError, NotFoundError
from services.events import DeliveryStarter
from services.retention import refuse_expired_key
from services.unit_of_work import UnitOfWork

CREDITED = "credited"
PENDING_REVIEW = "pending_review"
REJECTED = "rejected"

# writes the request's answer in the deposit's own transaction (api/idempotency.answer_in)
AnswerRecorder = Callable[[AsyncConnection, Any], Awaitable[None]]


def deposit_event_id(deposit_id: str, status: str) -> str:
    """The id of the event a deposit's status emits (one per status)."""
    return f"evt_{deposit_id}_{status}"


@dataclass(frozen=True)
class DepositOrder:
    """A validated deposit (the API checked the account and its currency)."""

    tenant_id: str
    created_by: str
    key_id: str
    idempotency_key: str
    account_id: str
    amount: int
    currency: str
    bank_reference: str | None = None


def deposit_id_for(tenant_id: str, idempotency_key: str) -> str:
    """The deposit a request makes: the same for every attempt with the same key."""
    return derived_id("dep", tenant_id, idempotency_key)


def deposit_event_data(row: Any) -> dict[str, Any]:
    """The body of a `deposit.<status>` event, from a `deposits` row."""
    return {
        "deposit_id": row.id,
        "status": row.status,
        "account_id": row.account_id,
        "amount": row.amount,
        "currency": row.currency,
        "bank_reference": row.bank_reference,
    }


async def _announce(uow: UnitOfWork, row: Any, at: datetime) -> None:
    # one event per status a deposit reaches (ids derived: a re-run writes nothing new)
    await uow.event(
        event_id=deposit_event_id(row.id, row.status),
        tenant_id=row.tenant_id,
        type=f"deposit.{row.status}",
        data=deposit_event_data(row),
        at=at,
    )


async def _credit(conn: AsyncConnection, row: Any) -> None:
    # the transfer id is the deposit id: a second attempt is the ledger's "exists", never a
    # second credit
    [result] = await create_transfers_in(
        conn,
        [
            Transfer(
                id=row.id,
                debit_account_id=shard_of(funding_account_id(row.currency), row.id),
                credit_account_id=row.account_id,
                amount=row.amount,
                currency=row.currency,
                code="deposit",
            )
        ],
    )
    if result is not TransferResult.OK:
        raise ConflictError("ledger_refused", f"The ledger refused: {result.value}.")


async def credit_deposit(
    engine: AsyncEngine,
    deliveries: DeliveryStarter,
    order: DepositOrder,
    *,
    key_retention_seconds: float,
    review_threshold: int,
    record: AnswerRecorder | None = None,
) -> Any:
    """Record the deposit and credit the account (or hold it for review when its amount is
    above `review_threshold`); returns the deposit row (the existing one when a re-run finds
    it). `record(conn, row)` stores the request's answer in the same transaction.

    Refusals (`ConflictError`): `ledger_refused`; `bank_reference_in_use` if a live deposit
    already books this bank reference; `idempotency_key_expired` if the deposit this key made
    is older than `key_retention_seconds`."""
    deposit_id = deposit_id_for(order.tenant_id, order.idempotency_key)
    status = PENDING_REVIEW if order.amount > review_threshold else CREDITED
    async with UnitOfWork(engine, deliveries) as uow:
        conn = uow.conn
        try:
            row = (
                await conn.execute(
                    insert(deposits)
                    .values(
                        id=deposit_id,
                        tenant_id=order.tenant_id,
                        account_id=order.account_id,
                        amount=order.amount,
                        currency=order.currency,
                        created_by=order.created_by,
                        created_by_key_id=order.key_id,
                        bank_reference=order.bank_reference,
                        status=status,
                        credited_at=func.now() if status == CREDITED else None,
                    )
                    # only the id: another deposit's bank reference is a refusal, not a re-run
                    .on_conflict_do_nothing(index_elements=[deposits.c.id])
                    .returning(*deposits.c)
                )
            ).first()
        except IntegrityError as error:
            if "deposits_bank_reference" not in str(error.orig):
                raise
            raise ConflictError(
                "bank_reference_in_use",
                f"A deposit already books the bank's credit {order.bank_reference!r}.",
                param="bank_reference",
            ) from error
        if row is None:  # a re-run: the deposit, its transfer and its answer committed before
            found = (await conn.execute(select(deposits).where(deposits.c.id == deposit_id))).one()
            # ... unless it is older than its key's record is kept: a new request reusing
            # an expired key
            refuse_expired_key(found.created_at, found.id, key_retention_seconds)
            if record is not None:
                await record(conn, found)
            return found
        if status == CREDITED:
            await _credit(conn, row)
        await _announce(uow, row, row.created_at)
        uow.audit(
            actor=order.created_by,
            action="deposit.credited" if status == CREDITED else "deposit.pending_review",
            subject=deposit_id,
            tenant_id=order.tenant_id,
            detail={
                "account_id": order.account_id,
                "amount": order.amount,
                "currency": order.currency,
                "bank_reference": order.bank_reference,
                "key_id": order.key_id,
            },
            idempotency_key=f"{deposit_id}:created",
        )
        if record is not None:
            await record(conn, row)
    return row


async def load_deposit(engine: AsyncEngine, tenant_id: str, deposit_id: str) -> Any:
    """The tenant's deposit (`NotFoundError` for an unknown id or another tenant's)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(deposits).where(
                    deposits.c.id == deposit_id, deposits.c.tenant_id == tenant_id
                )
            )
        ).first()
    if row is None:
        raise NotFoundError("deposit_not_found", f"No deposit {deposit_id}.")
    return row


async def review_deposit(
    engine: AsyncEngine,
    deliveries: DeliveryStarter,
    deposit_id: str,
    *,
    tenant_id: str | None,
    decision: Literal["approve", "reject"],
    reviewer: str,
    reviewer_key_id: str,
    note: str = "",
) -> Any:
    """Approve (credit the ledger, once) or reject (credit nothing) a deposit in review;
    returns the deposit row after the decision. `tenant_id` None: any tenant's deposit.

    Refusals: `deposit_not_found` (`NotFoundError`); `four_eyes_violation`
    (`ForbiddenError`) when the reviewer is the creator's principal or uses its key;
    `deposit_not_in_review` (`ConflictError`) once it was decided; `ledger_refused`."""
    async with UnitOfWork(engine, deliveries) as uow:
        conn = uow.conn
        # the row lock orders concurrent decisions: the second one sees the first's status
        query = select(deposits).where(deposits.c.id == deposit_id)
        if tenant_id is not None:
            query = query.where(deposits.c.tenant_id == tenant_id)
        row = (await conn.execute(query.with_for_update())).first()
        if row is None:
            raise NotFoundError("deposit_not_found", f"No deposit {deposit_id}.")
        if row.status != PENDING_REVIEW:
            raise ConflictError("deposit_not_in_review", f"Deposit {deposit_id} is {row.status}.")
        if reviewer == row.created_by or reviewer_key_id == row.created_by_key_id:
            raise ForbiddenError(
                "four_eyes_violation", "The principal who made a deposit may not review it."
            )
        approved = decision == "approve"
        decided = (
            await conn.execute(
                update(deposits)
                .where(deposits.c.id == deposit_id)
                .values(
                    status=CREDITED if approved else REJECTED,
                    credited_at=func.now() if approved else None,
                    reviewed_by=reviewer,
                    review_note=note or None,
                    reviewed_at=func.now(),
                )
                .returning(*deposits.c)
            )
        ).one()
        if approved:
            await _credit(conn, decided)
        await _announce(uow, decided, decided.reviewed_at)
        uow.audit(
            actor=reviewer,
            action="deposit.approved" if approved else "deposit.rejected",
            subject=deposit_id,
            tenant_id=row.tenant_id,
            detail={
                "note": note,
                "key_id": reviewer_key_id,
                "amount": row.amount,
                "currency": row.currency,
                "created_by": row.created_by,
            },
            idempotency_key=f"{deposit_id}:reviewed",
        )
    return decided
