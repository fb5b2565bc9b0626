"""Deposits: ops credit incoming funds to a customer account.

The deposit row, its ledger transfer (from the currency's funding account) and its audit
record commit in one unit of work. The deposit id derives from the tenant and the
Idempotency-Key, so a request taken over after its first attempt died (api/idempotency.py)
finds the deposit it made instead of crediting the money twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.ids import derived_id
from kernel.tables import deposits
from ledger import Transfer, TransferResult, create_transfers_in
from ledger.models import funding_account_id, shard_of
from services.errors import ConflictError
from services.retention import refuse_expired_key
from services.unit_of_work import UnitOfWork


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


def deposit_id_for(tenant_id: str, idempotency_key: str) -> str:
    """The deposit a request makes: the same for every attempt with the same key."""
    return derived_id("dep", tenant_id, idempotency_key)


async def credit_deposit(
    engine: AsyncEngine, order: DepositOrder, *, key_retention_seconds: float
) -> Any:
    """Record the deposit and credit the account; returns the deposit row (the existing one
    when a re-run finds it). `ConflictError` (`ledger_refused`) if the ledger refuses;
    (`idempotency_key_expired`) if the deposit this key made is older than
    `key_retention_seconds`."""
    deposit_id = deposit_id_for(order.tenant_id, order.idempotency_key)
    async with UnitOfWork(engine) as uow:
        conn = uow.conn
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
                )
                .on_conflict_do_nothing()
                .returning(*deposits.c)
            )
        ).first()
        if row is None:  # a re-run: the deposit and its transfer committed together before
            found = (await conn.execute(select(deposits).where(deposits.c.id == deposit_id))).one()
            # ... unless it is older than its key's record is kept: a new request reusing
            # an expired key
            refuse_expired_key(found.created_at, found.id, key_retention_seconds)
            return found
        [result] = await create_transfers_in(
            conn,
            [
                Transfer(
                    id=deposit_id,
                    debit_account_id=shard_of(funding_account_id(order.currency), deposit_id),
                    credit_account_id=order.account_id,
                    amount=order.amount,
                    currency=order.currency,
                    code="deposit",
                )
            ],
        )
        if result is not TransferResult.OK:
            raise ConflictError("ledger_refused", f"The ledger refused: {result.value}.")
        uow.audit(
            actor=order.created_by,
            action="deposit.credited",
            subject=deposit_id,
            tenant_id=order.tenant_id,
            detail={
                "account_id": order.account_id,
                "amount": order.amount,
                "currency": order.currency,
                "key_id": order.key_id,
            },
            idempotency_key=f"{deposit_id}:credited",
        )
    return row
