"""Deposits: ops credit incoming funds to a customer account."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse

from api.deps import Engine, Ops
from api.errors import ProblemError
from api.idempotency import run_idempotently
from api.routers.accounts import load_customer_account
from api.schemas import DepositCreate, DepositOut
from kernel import audit
from kernel.ids import new_id
from kernel.tables import deposits
from ledger import Transfer, TransferResult, create_transfers_in
from ledger.models import funding_account_id, shard_of

router = APIRouter(prefix="/v1/deposits", tags=["deposits"])


@router.post("", status_code=201, response_model=DepositOut)
async def create_deposit(
    body: DepositCreate,
    principal: Ops,
    engine: Engine,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Credit `amount` to the account from the funding account (needs `Idempotency-Key`)."""

    async def handler() -> tuple[int, dict[str, Any]]:
        account = await load_customer_account(engine, principal.tenant_id, body.account_id)
        if account is None:
            raise ProblemError(
                422, "account_not_found", f"No account {body.account_id}.", param="account_id"
            )
        if account.currency != body.currency:
            raise ProblemError(
                422,
                "currency_mismatch",
                f"Account {body.account_id} holds {account.currency}.",
                param="currency",
            )
        deposit_id = new_id("dep")
        async with engine.begin() as conn:
            # the record and the money movement commit together or not at all
            row = (
                await conn.execute(
                    deposits.insert()
                    .values(
                        id=deposit_id,
                        tenant_id=principal.tenant_id,
                        account_id=body.account_id,
                        amount=body.amount,
                        currency=body.currency,
                        created_by=principal.name,
                    )
                    .returning(*deposits.c)
                )
            ).one()
            [result] = await create_transfers_in(
                conn,
                [
                    Transfer(
                        id=deposit_id,
                        debit_account_id=shard_of(funding_account_id(body.currency), deposit_id),
                        credit_account_id=body.account_id,
                        amount=body.amount,
                        currency=body.currency,
                        code="deposit",
                    )
                ],
            )
            if result is not TransferResult.OK:
                raise ProblemError(409, "ledger_refused", f"The ledger refused: {result.value}.")
        await audit.append(
            engine,
            actor=principal.name,
            action="deposit.credited",
            subject=deposit_id,
            tenant_id=principal.tenant_id,
            detail={
                "account_id": body.account_id,
                "amount": body.amount,
                "currency": body.currency,
                "key_id": principal.key_id,
            },
            idempotency_key=f"{deposit_id}:credited",
        )
        out = DepositOut(
            id=row.id,
            account_id=row.account_id,
            amount=row.amount,
            currency=row.currency,
            created_at=row.created_at,
        )
        return 201, out.model_dump(mode="json")

    return await run_idempotently(
        engine, principal, idempotency_key, "POST /v1/deposits", body, handler
    )
