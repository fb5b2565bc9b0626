"""Payment batches (DESIGN §10, issue #19): up to 10,000 payments in one request, as JSON,
CSV or pain.001.001.09; approved once; each item a real payment."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.batch_input import (
    CSV_COLUMNS,
    CSV_TYPE,
    JSON_TYPE,
    XML_TYPES,
    BatchFingerprint,
    BatchRequest,
    RawItem,
    read_batch,
)
from api.deps import AppSettings, Engine, Ops, Reader, Temporal, Writer
from api.errors import ProblemError
from api.fields import BATCH_ID, EXAMPLE_BATCH_ID, PAYMENT_ID
from api.idempotency import IdempotencyKey, replayable, run_idempotently
from api.problems import (
    AUTHENTICATED,
    FOUR_EYES_VIOLATION,
    IDEMPOTENT,
    INVALID_CSV,
    INVALID_CURSOR,
    INVALID_PAIN001,
    ORCHESTRATED,
    PAYMENT_BATCH_EMPTY,
    PAYMENT_BATCH_INVALID,
    PAYMENT_BATCH_NOT_CANCELABLE,
    PAYMENT_BATCH_NOT_FOUND,
    PAYMENT_BATCH_NOT_IN_REVIEW,
    PAYMENT_BATCH_TOO_LARGE,
    REVIEW_TOKEN_INVALID,
    WITH_BODY,
    WITH_PARAMETERS,
    problems,
)
from api.routers.accounts import load_customer_account
from api.routers.payments import checked_creditor
from api.schemas import (
    EXAMPLE_BATCH_ITEM,
    BatchReviewOut,
    CancelCreate,
    ItemErrorOut,
    PaymentBatchItemIn,
    PaymentBatchItemList,
    PaymentBatchItemOut,
    PaymentBatchOut,
    ReviewCreate,
)
from kernel.api_keys import Principal
from kernel.ids import derived_id
from kernel.settings import Settings
from kernel.tables import payment_batch_items, payment_batches, payments
from services import batches as batches_service
from services.batches import STARTED, BatchItem, BatchOrder, create_batch, item_counts
from services.reviews import Reviewer

router = APIRouter(prefix="/v1/payment-batches", tags=["payment batches"])

BatchIdPath = Annotated[str, Path(pattern=BATCH_ID, examples=[EXAMPLE_BATCH_ID])]
# api/openapi.py puts the model into the document's components (no parameter names it)
BATCH_SCHEMA = "#/components/schemas/PaymentBatchCreate"
CSV_EXAMPLE = (
    ",".join(CSV_COLUMNS)
    + "\npayroll-0001,acc_01jdz3k7b2c4d6e8f0g2h4j6k8,250000,EUR,sepa,Erika Mustermann,DE,"
    "DE89370400440532013000,,,,Salary December\n"
)
BATCH_EXAMPLE = {"reference": "payroll-2026-12", "items": [EXAMPLE_BATCH_ITEM]}
# the request body in its three forms (read by hand: a CSV or XML body is no JSON model)
BATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            JSON_TYPE: {"schema": {"$ref": BATCH_SCHEMA}, "example": BATCH_EXAMPLE},
            CSV_TYPE: {
                "schema": {
                    "type": "string",
                    "description": (
                        "One item a line after the header `" + ",".join(CSV_COLUMNS) + "`;"
                        " `amount` in minor units; empty cells are absent fields."
                    ),
                },
                "example": CSV_EXAMPLE,
            },
            XML_TYPES[0]: {
                "schema": {
                    "type": "string",
                    "description": (
                        "An ISO 20022 pain.001.001.09 valid against the official schema:"
                        " `DbtrAcct/Id/Othr/Id` is the account id (`acc_…`), each"
                        " `CdtTrfTxInf` one item (`EndToEndId` its reference)."
                    ),
                },
            },
        },
    }
}


def _item_error(raw: RawItem, field: str, code: str, detail: str) -> ItemErrorOut:
    return ItemErrorOut(
        index=raw.index,
        line=raw.line,
        reference=raw.reference,
        field=field,
        code=code,
        detail=detail,
    )


async def _judge(
    engine: AsyncEngine, tenant_id: str, request: BatchRequest
) -> tuple[list[BatchItem], list[ItemErrorOut]]:
    """Each item through the checks of `POST /v1/payments`: the accepted ones as batch items,
    the others as errors naming the item and the field."""
    names = request.field_names
    accounts: dict[str, Any] = {}
    accepted: list[BatchItem] = []
    refused: list[ItemErrorOut] = []
    for raw in request.items:
        if raw.unreadable is not None:
            refused.append(_item_error(raw, *raw.unreadable))
            continue
        try:
            body = PaymentBatchItemIn.model_validate(raw.body)
        except ValidationError as err:
            first = err.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "item"
            code = "validation_error"
            refused.append(_item_error(raw, names.get(field, field), code, first["msg"]))
            continue
        if body.account_id not in accounts:
            accounts[body.account_id] = await load_customer_account(
                engine, tenant_id, body.account_id
            )
        account = accounts[body.account_id]
        try:
            if account is None:
                raise ProblemError(
                    422, "account_not_found", f"No account {body.account_id}.", param="account_id"
                )
            creditor = checked_creditor(account, body)
        except ProblemError as err:
            field = err.param or "item"
            refused.append(_item_error(raw, names.get(field, field), err.code, err.detail))
            continue
        accepted.append(
            BatchItem(
                index=raw.index,
                reference=body.reference,
                source_line=raw.line,
                account_id=account.id,
                customer_id=account.customer_id,
                amount=body.amount,
                currency=body.currency,
                rail=body.rail,
                creditor=creditor,
                remittance_info=body.remittance_info,
                metadata=body.metadata,
                counterparty_id=body.counterparty_id,
            )
        )
    return accepted, refused


async def _create(
    engine: AsyncEngine,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    request: BatchRequest,
    idempotency_key: str,
) -> tuple[int, dict[str, Any]]:
    accepted, refused = await _judge(engine, principal.tenant_id, request)
    if refused and (request.on_invalid_item != "skip" or not accepted):
        raise ProblemError(
            422,
            "payment_batch_invalid",
            f"{len(refused)} of {len(request.items)} items are invalid (see `errors`);"
            " nothing was created." + ("" if accepted else " No item is valid."),
            param="items",
            errors=[error.model_dump(mode="json") for error in refused],
        )
    row, _ = await create_batch(
        engine,
        temporal,
        settings,
        BatchOrder(
            batch_id=derived_id("bat", principal.tenant_id, idempotency_key),
            tenant_id=principal.tenant_id,
            initiated_by=principal.name,
            key_id=principal.key_id,
            source=request.source,
            reference=request.reference,
            items=accepted,
            skipped=len(refused),
        ),
    )
    answer = batch_out(row, {batches_service.PENDING: row.item_count})
    answer.skipped_items = refused
    return 202, answer.model_dump(mode="json")


def batch_out(row: Any, counts: dict[str, int]) -> PaymentBatchOut:
    """Render a batch row with its items' counts."""
    review = None
    if row.review_decision is not None:
        review = BatchReviewOut(
            decision=row.review_decision,
            reviewed_by=row.reviewed_by,
            note=row.review_note,
            reviewed_at=row.reviewed_at,
        )
    return PaymentBatchOut(
        id=row.id,
        status=row.status,
        reference=row.reference,
        source=row.source,
        item_count=row.item_count,
        totals=row.totals,
        counts=counts,
        needs_review=row.needs_review,
        review=review,
        skipped_count=row.skipped_count,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


async def load_batch(engine: AsyncEngine, tenant_id: str, batch_id: str) -> PaymentBatchOut:
    """The tenant's batch with its items' counts (another tenant's id is not found)."""
    async with engine.connect() as conn:
        row = (await conn.execute(batch_query(tenant_id, batch_id))).first()
        if row is None:
            raise ProblemError(404, "payment_batch_not_found", f"No payment batch {batch_id}.")
        counts = await item_counts(conn, batch_id)
    return batch_out(row, counts)


def batch_query(tenant_id: str, batch_id: str) -> Select[Any]:
    """The tenant's batch by id."""
    return select(payment_batches).where(
        payment_batches.c.id == batch_id, payment_batches.c.tenant_id == tenant_id
    )


def items_page_query(batch_id: str, *, limit: int, after_index: int | None) -> Select[Any]:
    """A page of the batch's items in index order (keyset on the index), with their
    payments' statuses."""
    status = payments.c.status
    query = (
        select(payment_batch_items, status.label("payment_status"))
        .select_from(
            payment_batch_items.outerjoin(
                payments,
                (payments.c.id == payment_batch_items.c.payment_id)
                & (payment_batch_items.c.state == STARTED),
            )
        )
        .where(payment_batch_items.c.batch_id == batch_id)
    )
    if after_index is not None:
        query = query.where(payment_batch_items.c.idx > after_index)
    return query.order_by(payment_batch_items.c.idx).limit(limit + 1)


@router.post(
    "",
    status_code=202,
    response_model=PaymentBatchOut,
    openapi_extra=BATCH_BODY,
    responses=replayable(202)
    | problems(
        AUTHENTICATED,
        ORCHESTRATED,
        WITH_BODY,
        IDEMPOTENT,
        PAYMENT_BATCH_INVALID,
        PAYMENT_BATCH_TOO_LARGE,
        PAYMENT_BATCH_EMPTY,
        INVALID_CSV,
        INVALID_PAIN001,
    ),
)
async def create_payment_batch(
    request: Request,
    principal: Writer,
    engine: Engine,
    temporal: Temporal,
    settings: AppSettings,
    idempotency_key: IdempotencyKey,
    reference: Annotated[
        str | None, Query(min_length=1, max_length=140, pattern=r"^[^\x00]*$")
    ] = None,
    on_invalid_item: Annotated[str | None, Query(pattern="^(reject|skip)$")] = None,
) -> JSONResponse:
    """Send up to 10,000 payments at once (JSON, `text/csv` or pain.001.001.09 XML); answers
    202 with the batch (`processing`, or `in_review` above the review threshold). Invalid
    items refuse the batch whole, listed in the problem's `errors`, unless
    `on_invalid_item` is `skip` (in the JSON body or the query string)."""
    media_type = request.headers.get("content-type", JSON_TYPE).split(";")[0].strip().lower()
    batch = read_batch(
        await request.body(),
        media_type,
        max_items=settings.batches.max_items,
        reference=reference,
        on_invalid_item=on_invalid_item,
    )
    fingerprint = BatchFingerprint(
        source=batch.source,
        digest=batch.digest,
        reference=batch.reference,
        on_invalid_item=batch.on_invalid_item,
    )
    return await run_idempotently(
        engine,
        principal,
        idempotency_key,
        "POST /v1/payment-batches",
        fingerprint,
        lambda: _create(engine, temporal, settings, principal, batch, idempotency_key),
        takeover_after=settings.api.idempotency_takeover_seconds,
    )


@router.get(
    "/{batch_id}",
    response_model=PaymentBatchOut,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS, PAYMENT_BATCH_NOT_FOUND),
)
async def get_payment_batch(
    batch_id: BatchIdPath, principal: Reader, engine: Engine
) -> PaymentBatchOut:
    """Status, totals and the items' counts by status."""
    return await load_batch(engine, principal.tenant_id, batch_id)


@router.get(
    "/{batch_id}/items",
    response_model=PaymentBatchItemList,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS, PAYMENT_BATCH_NOT_FOUND, INVALID_CURSOR),
)
async def list_payment_batch_items(
    batch_id: BatchIdPath,
    principal: Reader,
    engine: Engine,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[str | None, Query(pattern=PAYMENT_ID)] = None,
) -> PaymentBatchItemList:
    """The batch's items in order, each with its payment's id and status; page with
    `starting_after=<last item id>`."""
    async with engine.connect() as conn:
        if (await conn.execute(batch_query(principal.tenant_id, batch_id))).first() is None:
            raise ProblemError(404, "payment_batch_not_found", f"No payment batch {batch_id}.")
        after = None
        if starting_after is not None:
            after = (
                await conn.execute(
                    select(payment_batch_items.c.idx).where(
                        payment_batch_items.c.batch_id == batch_id,
                        payment_batch_items.c.payment_id == starting_after,
                    )
                )
            ).scalar_one_or_none()
            if after is None:
                raise ProblemError(
                    422,
                    "invalid_cursor",
                    "starting_after is not an item of this batch.",
                    param="starting_after",
                )
        rows = (
            await conn.execute(items_page_query(batch_id, limit=limit, after_index=after))
        ).all()
    return PaymentBatchItemList(
        data=[
            PaymentBatchItemOut(
                id=row.payment_id,
                index=row.idx,
                line=row.source_line,
                reference=row.reference,
                status=row.payment_status or row.state,
                amount=row.amount,
                currency=row.currency,
                rail=row.rail,
            )
            for row in rows[:limit]
        ],
        has_more=len(rows) > limit,
    )


@router.post(
    "/{batch_id}/review",
    response_model=PaymentBatchOut,
    responses=problems(
        AUTHENTICATED,
        ORCHESTRATED,
        WITH_BODY,
        PAYMENT_BATCH_NOT_FOUND,
        FOUR_EYES_VIOLATION,
        REVIEW_TOKEN_INVALID,
        PAYMENT_BATCH_NOT_IN_REVIEW,
    ),
)
async def review_payment_batch(
    batch_id: BatchIdPath,
    body: ReviewCreate,
    principal: Ops,
    engine: Engine,
    temporal: Temporal,
    settings: AppSettings,
) -> PaymentBatchOut:
    """Approve or reject a batch in review, once for all its items; not by its sender."""
    await batches_service.review_batch(
        engine,
        temporal,
        batch_id,
        decision=body.decision,
        reviewer=Reviewer(principal.name, principal.tenant_id),
        settings=settings.reviews,
        note=body.note,
        tenant_id=principal.tenant_id,
    )
    return await load_batch(engine, principal.tenant_id, batch_id)


@router.post(
    "/{batch_id}/cancel",
    status_code=202,
    response_model=PaymentBatchOut,
    responses=problems(
        AUTHENTICATED,
        ORCHESTRATED,
        WITH_BODY,
        PAYMENT_BATCH_NOT_FOUND,
        PAYMENT_BATCH_NOT_CANCELABLE,
    ),
)
async def cancel_payment_batch(
    batch_id: BatchIdPath,
    body: CancelCreate,
    principal: Writer,
    engine: Engine,
    temporal: Temporal,
) -> PaymentBatchOut:
    """Cancel a batch in review or processing: items not started are canceled, payments not
    yet submitted are canceled, the rest finish; the batch ends `canceled`."""
    batch = await load_batch(engine, principal.tenant_id, batch_id)
    await batches_service.cancel_batch(
        engine,
        temporal,
        batch_id,
        actor=principal.name,
        reason=body.reason,
        tenant_id=principal.tenant_id,
    )
    return batch
