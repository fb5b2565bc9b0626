"""Deposits: the platform credits incoming funds to any tenant's customer account (scope
`platform`: the money comes from the platform's funding account, so a tenant's `ops` key may
not); a second platform principal reviews those above the review threshold. The deposit
belongs to the account's tenant, whose read keys list it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.deps import AppSettings, Engine, Platform, Reader, Temporal
from api.errors import ProblemError
from api.fields import DEPOSIT_ID, EXAMPLE_DEPOSIT_ID
from api.idempotency import (
    IdempotencyClaim,
    IdempotencyKey,
    answer_in,
    replayable,
    run_idempotently,
)
from api.pagination import keyset_after, page_query
from api.problems import (
    AUTHENTICATED,
    BANK_REFERENCE_IN_USE,
    CURRENCY_MISMATCH,
    DEPOSIT_NOT_FOUND,
    DEPOSIT_NOT_IN_REVIEW,
    FOUR_EYES_VIOLATION,
    IDEMPOTENT,
    INVALID_CURSOR,
    LEDGER_REFUSED,
    ORCHESTRATED,
    UNKNOWN_ACCOUNT,
    WITH_BODY,
    WITH_PARAMETERS,
    problems,
)
from api.routers.accounts import load_customer_account
from api.schemas import (
    DepositCreate,
    DepositList,
    DepositOut,
    DepositReviewCreate,
    DepositReviewOut,
)
from kernel.tables import deposits
from services.deposits import (
    CREDITED,
    DepositOrder,
    credit_deposit,
    deposit_event_id,
    load_deposit,
    review_deposit,
)
from services.events import DeliveryStarter

router = APIRouter(prefix="/v1/deposits", tags=["deposits"])

DepositIdPath = Annotated[str, Path(pattern=DEPOSIT_ID, examples=[EXAMPLE_DEPOSIT_ID])]
METHOD_PATH = "POST /v1/deposits"


def deposit_out(row: Any) -> DepositOut:
    """The API's view of a `deposits` row."""
    review = None
    if row.reviewed_at is not None:
        review = DepositReviewOut(
            decision="approve" if row.status == CREDITED else "reject",
            reviewed_by=row.reviewed_by,
            note=row.review_note,
            reviewed_at=row.reviewed_at,
        )
    return DepositOut(
        id=row.id,
        account_id=row.account_id,
        amount=row.amount,
        currency=row.currency,
        status=row.status,
        bank_reference=row.bank_reference,
        created_by=row.created_by,
        review=review,
        created_at=row.created_at,
    )


@router.post(
    "",
    status_code=201,
    response_model=DepositOut,
    responses=replayable(201)
    | problems(
        AUTHENTICATED,
        ORCHESTRATED,
        WITH_BODY,
        IDEMPOTENT,
        UNKNOWN_ACCOUNT,
        CURRENCY_MISMATCH,
        LEDGER_REFUSED,
        BANK_REFERENCE_IN_USE,
    ),
)
async def create_deposit(
    body: DepositCreate,
    principal: Platform,
    engine: Engine,
    temporal: Temporal,
    settings: AppSettings,
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    """Credit `amount` to the account from the funding account (needs `Idempotency-Key`).

    Above the review threshold (`PAYMENTS_DEPOSIT_REVIEW_THRESHOLD`, minor units) the deposit
    is made `pending_review` and nothing is credited until another platform principal approves it
    (`POST /v1/deposits/{deposit_id}/review`). The deposit and the answer to this request
    commit together: a retry after any failure replays this answer, never credits twice."""
    claim = IdempotencyClaim.of(principal.tenant_id, idempotency_key, METHOD_PATH, body)

    async def record(conn: AsyncConnection, row: Any) -> None:
        # the answer commits with the deposit (api/idempotency.py)
        await answer_in(conn, claim, 201, deposit_out(row).model_dump(mode="json"))

    async def handler() -> tuple[int, dict[str, Any]]:
        # money from the platform's funding account into any tenant's account: the deposit
        # belongs to the account's tenant (its partner sees it and gets its webhooks)
        account = await load_customer_account(engine, None, body.account_id)
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
            DeliveryStarter(temporal, settings),
            DepositOrder(
                tenant_id=account.tenant_id,
                created_by=principal.name,
                key_id=principal.key_id,
                idempotency_key=idempotency_key,
                account_id=body.account_id,
                amount=body.amount,
                currency=body.currency,
                bank_reference=body.bank_reference,
            ),
            key_retention_seconds=settings.retention.idempotency_seconds,
            review_threshold=settings.deposits.review_threshold,
            record=record,
        )
        return 201, deposit_out(row).model_dump(mode="json")

    async def redeliver(answer: dict[str, Any]) -> None:
        # the deposit committed with its answer; its webhook deliveries start only after the
        # commit, so an API that died in between left them unstarted: start them now
        if answer.get("id") and answer.get("status"):
            starter = DeliveryStarter(temporal, settings)
            await starter.restart(engine, deposit_event_id(answer["id"], answer["status"]))

    return await run_idempotently(
        engine,
        principal,
        idempotency_key,
        METHOD_PATH,
        body,
        handler,
        takeover_after=settings.api.idempotency_takeover_seconds,
        on_replay=redeliver,
    )


def deposits_page_query(
    tenant_id: str, *, limit: int, after: tuple[Any, str] | None = None, status: str | None = None
) -> Select[Any]:
    """A page of the tenant's deposits, newest first, optionally by status (migration 0016's
    indexes serve both)."""
    return page_query(deposits, tenant_id, limit=limit, after=after, filters={"status": status})


@router.get(
    "",
    response_model=DepositList,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS, INVALID_CURSOR),
)
async def list_deposits(
    principal: Reader,
    engine: Engine,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[str | None, Query(pattern=DEPOSIT_ID)] = None,
    status: Literal["credited", "pending_review", "rejected"] | None = None,
) -> DepositList:
    """The tenant's deposits, newest first (`?status=pending_review`: those waiting for a
    decision); page with `starting_after=<last id>`."""
    async with engine.connect() as conn:
        after = await keyset_after(conn, deposits, principal.tenant_id, starting_after, "a deposit")
        query = deposits_page_query(principal.tenant_id, limit=limit, after=after, status=status)
        rows = (await conn.execute(query)).all()
    return DepositList(data=[deposit_out(row) for row in rows[:limit]], has_more=len(rows) > limit)


@router.get(
    "/{deposit_id}",
    response_model=DepositOut,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS, DEPOSIT_NOT_FOUND),
)
async def get_deposit(deposit_id: DepositIdPath, principal: Reader, engine: Engine) -> DepositOut:
    """A deposit of yours, with its status and review."""
    return deposit_out(await load_deposit(engine, principal.tenant_id, deposit_id))


@router.post(
    "/{deposit_id}/review",
    response_model=DepositOut,
    responses=problems(
        AUTHENTICATED,
        ORCHESTRATED,
        WITH_BODY,
        DEPOSIT_NOT_FOUND,
        FOUR_EYES_VIOLATION,
        DEPOSIT_NOT_IN_REVIEW,
        LEDGER_REFUSED,
    ),
)
async def review(
    deposit_id: DepositIdPath,
    body: DepositReviewCreate,
    principal: Platform,
    engine: Engine,
    temporal: Temporal,
    settings: AppSettings,
) -> DepositOut:
    """Approve (credit the account, once) or reject (credit nothing) a deposit in
    `pending_review`; neither the principal who made it nor its key may decide it."""
    row = await review_deposit(
        engine,
        DeliveryStarter(temporal, settings),
        deposit_id,
        # a platform decision, whichever tenant's account the deposit credits
        tenant_id=None,
        decision=body.decision,
        reviewer=principal.name,
        reviewer_key_id=principal.key_id,
        note=body.note,
    )
    return deposit_out(row)
