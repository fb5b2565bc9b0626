"""Deposits: ops credit incoming funds to a customer account."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import AppSettings, Engine, Ops
from api.errors import ProblemError
from api.idempotency import IdempotencyKey, replayable, run_idempotently
from api.problems import (
    AUTHENTICATED,
    CURRENCY_MISMATCH,
    IDEMPOTENT,
    LEDGER_REFUSED,
    UNKNOWN_ACCOUNT,
    WITH_BODY,
    problems,
)
from api.routers.accounts import load_customer_account
from api.schemas import DepositCreate, DepositOut
from services.deposits import DepositOrder, credit_deposit

router = APIRouter(prefix="/v1/deposits", tags=["deposits"])


@router.post(
    "",
    status_code=201,
    response_model=DepositOut,
    responses=replayable(201)
    | problems(
        AUTHENTICATED, WITH_BODY, IDEMPOTENT, UNKNOWN_ACCOUNT, CURRENCY_MISMATCH, LEDGER_REFUSED
    ),
)
async def create_deposit(
    body: DepositCreate,
    principal: Ops,
    engine: Engine,
    settings: AppSettings,
    idempotency_key: IdempotencyKey,
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
        row = await credit_deposit(
            engine,
            DepositOrder(
                tenant_id=principal.tenant_id,
                created_by=principal.name,
                key_id=principal.key_id,
                idempotency_key=idempotency_key,
                account_id=body.account_id,
                amount=body.amount,
                currency=body.currency,
            ),
            key_retention_seconds=settings.idempotency_retention_seconds,
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
        engine,
        principal,
        idempotency_key,
        "POST /v1/deposits",
        body,
        handler,
        takeover_after=settings.idempotency_takeover_seconds,
    )
