"""Payments: initiate (starts the payment workflow), read, list, review."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar, cast

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio.client import Client

from api.deps import AppSettings, Engine, Ops, Reader, Temporal, Writer
from api.errors import ProblemError
from api.fields import ACCOUNT_ID, BATCH_ID, EXAMPLE_PAYMENT_ID, PAYMENT_ID, SCHEDULE_ID
from api.idempotency import (
    IdempotencyClaim,
    IdempotencyKey,
    answer_in,
    replayable,
    run_idempotently,
)
from api.pagination import cursor_query, page_query
from api.problems import (
    AUTHENTICATED,
    FOUR_EYES_VIOLATION,
    IDEMPOTENT,
    INVALID_CURSOR,
    ORCHESTRATED,
    PAYMENT_ALREADY_RECALLED,
    PAYMENT_CHECKS,
    PAYMENT_IN_SANCTIONS_REVIEW,
    PAYMENT_NOT_CANCELABLE,
    PAYMENT_NOT_FOUND,
    PAYMENT_NOT_IN_REVIEW,
    PAYMENT_NOT_RECALLABLE,
    PAYMENT_NOT_RETRYABLE,
    RECALL_NOT_ALLOWED,
    REVIEW_TOKEN_INVALID,
    WITH_BODY,
    WITH_PARAMETERS,
    problems,
)
from api.routers.accounts import check_currency, load_customer_account
from api.schemas import (
    ActionOut,
    CancelCreate,
    CounterpartyCreate,
    CreditorIn,
    FailureOut,
    PaymentCreate,
    PaymentList,
    PaymentOut,
    PaymentTemplate,
    RecallCreate,
    RecallOut,
    ReviewCreate,
    StatusChangeOut,
)
from kernel.api_keys import Principal
from kernel.ids import derived_id
from kernel.settings import Settings
from kernel.tables import payment_status_history, payments
from nacha.routing import routing_number_valid
from rails.charset import (
    NACHA_MAX_AMOUNT,
    SEPA_MAX_AMOUNT,
    SEPA_REMITTANCE_LENGTH,
    epc_text,
    meaningful,
    nacha_text,
)
from services import payments as payments_service
from services import recalls as recalls_service
from services.events import DeliveryStarter, payment_event_id
from services.payments import PaymentOrder, initiate_payment
from services.reviews import Reviewer
from workflows.models import PaymentStatus

router = APIRouter(prefix="/v1/payments", tags=["payments"])

METHOD_PATH = "POST /v1/payments"
RAIL_CURRENCY = {"sepa": "EUR", "ach": "USD"}
PaymentIdPath = Annotated[str, Path(pattern=PAYMENT_ID, examples=[EXAMPLE_PAYMENT_ID])]
# the DFI account number field of a NACHA entry is 17 characters
ACH_ACCOUNT_NUMBER = re.compile(r"[0-9]{4,17}")


def _validate_creditor(rail: str, creditor: CreditorIn) -> CreditorIn:
    """Rail-specific checks; returns the creditor with its account id in canonical form."""
    return validate_account(rail, creditor, "creditor.")


AccountDetails = TypeVar("AccountDetails", bound=CreditorIn | CounterpartyCreate)


def validate_account(rail: str, creditor: AccountDetails, prefix: str) -> AccountDetails:
    """The IBAN (schwifty) and BIC of a SEPA account, or the ABA routing number check digit
    and account number of an ACH one; returns the details with the IBAN and BIC in their
    canonical form. `prefix` names the fields in the problem's `param` and detail."""
    if rail == "sepa":
        if creditor.iban is None:
            raise ProblemError(
                422, "iban_required", f"SEPA needs {prefix}iban.", param=f"{prefix}iban"
            )
        try:
            iban = IBAN(creditor.iban)
        except SchwiftyException as err:
            raise ProblemError(
                422,
                "invalid_iban",
                f"{prefix}iban is not a valid IBAN: {err}",
                param=f"{prefix}iban",
            ) from err
        bic = None
        if creditor.bic is not None:
            try:
                bic = str(BIC(creditor.bic))
            except SchwiftyException as err:
                raise ProblemError(
                    422,
                    "invalid_bic",
                    f"{prefix}bic is not a valid BIC: {err}",
                    param=f"{prefix}bic",
                ) from err
        # model_copy keeps the type; mypy reads the bound's union instead
        return cast(AccountDetails, creditor.model_copy(update={"iban": iban.compact, "bic": bic}))
    if creditor.routing_number is None or creditor.account_number is None:
        raise ProblemError(
            422,
            "routing_and_account_required",
            f"ACH needs {prefix}routing_number and {prefix}account_number.",
            param=f"{prefix}routing_number"
            if creditor.routing_number is None
            else f"{prefix}account_number",
        )
    if not routing_number_valid(creditor.routing_number):
        raise ProblemError(
            422,
            "invalid_routing_number",
            f"{prefix}routing_number fails the ABA check digit.",
            param=f"{prefix}routing_number",
        )
    if not ACH_ACCOUNT_NUMBER.fullmatch(creditor.account_number):
        raise ProblemError(
            422,
            "invalid_account_number",
            f"{prefix}account_number must be 4 to 17 digits.",
            param=f"{prefix}account_number",
        )
    return creditor


RAIL_MAX_AMOUNT = {"sepa": SEPA_MAX_AMOUNT, "ach": NACHA_MAX_AMOUNT}


def _rail_text(rail: str, body: PaymentTemplate) -> str:
    """What the rail can carry of the request (rails/charset.py: the rule); returns the
    creditor's name as the rail will carry it. The original is kept, screened and shown."""
    if body.amount > RAIL_MAX_AMOUNT[rail]:
        raise ProblemError(
            422,
            "amount_exceeds_rail_limit",
            f"amount must be at most {RAIL_MAX_AMOUNT[rail]} on rail {rail}.",
            param="amount",
        )
    if body.creditor is None:  # a saved counterparty: its name was checked when it was saved
        rail_name = ""
    else:
        name = body.creditor.name
        rail_name = nacha_text(name) if rail == "ach" else epc_text(name)
    if body.creditor is not None and not meaningful(rail_name):
        raise ProblemError(
            422,
            "text_not_representable",
            f"creditor.name has no letter or digit the {rail} rail can carry.",
            param="creditor.name",
        )
    # ACH files carry no remittance here (no addenda); SEPA carries it unstructured
    if rail == "sepa" and body.remittance_info:
        remittance = epc_text(body.remittance_info, width=None)
        if len(remittance) > SEPA_REMITTANCE_LENGTH:
            raise ProblemError(
                422,
                "remittance_info_too_long",
                f"remittance_info is {len(remittance)} characters in the EPC character set"
                f" (at most {SEPA_REMITTANCE_LENGTH}).",
                param="remittance_info",
            )
        if not meaningful(remittance):
            raise ProblemError(
                422,
                "text_not_representable",
                "remittance_info has no letter or digit the sepa rail can carry.",
                param="remittance_info",
            )
    return rail_name


async def load_payment(engine: AsyncEngine, tenant_id: str, payment_id: str) -> PaymentOut:
    """The tenant's payment with its history (another tenant's id is simply not found)."""
    async with engine.connect() as conn:
        row = (await conn.execute(payment_query(tenant_id, payment_id))).first()
        if row is None:
            raise ProblemError(404, "payment_not_found", f"No payment {payment_id}.")
        history = (await conn.execute(history_query([payment_id], row.created_at))).all()
    return payment_out(row, history_out(history))


# The queries of the payment reads, as functions so that tests/integration/test_query_plans.py
# checks the plans of exactly what runs.


def payment_query(tenant_id: str, payment_id: str) -> Select[Any]:
    """The tenant's payment by id."""
    return select(payments).where(payments.c.id == payment_id, payments.c.tenant_id == tenant_id)


def history_query(payment_ids: Sequence[str], since: datetime | None = None) -> Select[Any]:
    """The status histories of some payments, each in order; `since`: the oldest of their
    creation times (the history is partitioned by month and a payment's records are never
    older than the payment: the read then leaves the months before out; a day of slack for
    the writers' clocks)."""
    query = (
        select(payment_status_history)
        .where(payment_status_history.c.payment_id.in_(list(payment_ids)))
        .order_by(payment_status_history.c.payment_id, payment_status_history.c.seq)
    )
    if since is None:
        return query
    return query.where(payment_status_history.c.at >= since - timedelta(days=1))


def payment_cursor_query(tenant_id: str, payment_id: str) -> Select[Any]:
    """The keyset position of the tenant's payment a page starts after."""
    return cursor_query(payments, tenant_id, payment_id)


def payments_page_query(
    tenant_id: str,
    *,
    limit: int,
    after: tuple[Any, str] | None = None,
    status: str | None = None,
    account_id: str | None = None,
    batch_id: str | None = None,
    schedule_id: str | None = None,
) -> Select[Any]:
    """A page of the tenant's payments, newest first, optionally by status, account, batch
    and payment schedule."""
    filters = {
        "status": status,
        "account_id": account_id,
        "batch_id": batch_id,
        "schedule_id": schedule_id,
    }
    return page_query(payments, tenant_id, limit=limit, after=after, filters=filters)


def history_out(rows: Sequence[Any]) -> list[StatusChangeOut]:
    """Render a payment's status history rows."""
    return [
        StatusChangeOut(status=h.status, at=h.at, reasons=(h.detail or {}).get("reasons", []))
        for h in rows
    ]


def payment_out(row: Any, history: list[StatusChangeOut]) -> PaymentOut:
    """Render a payment row and its history."""
    failure = None
    if row.failure_code is not None:
        failure = FailureOut(
            code=row.failure_code, message=row.failure_message or "", reason_code=row.failure_reason
        )
    return PaymentOut(
        id=row.id,
        status=row.status,
        account_id=row.account_id,
        customer_id=row.customer_id,
        amount=row.amount,
        currency=row.currency,
        rail=row.rail,
        creditor=row.creditor,
        remittance_info=row.remittance_info,
        metadata=row.metadata,
        failure=failure,
        screening_hits=row.screening_hits,
        action=ActionOut(reason=row.action_reason) if row.action_reason else None,
        status_history=history,
        created_at=row.created_at,
        counterparty_id=row.counterparty_id,
        recall=RecallOut.model_validate(row.recall) if row.recall else None,
        execute_at=row.execute_at,
        schedule_id=row.schedule_id,
    )


async def _start_payment(
    engine: AsyncEngine,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    body: PaymentCreate,
    idempotency_key: str,
) -> tuple[int, dict[str, Any]]:
    claim = IdempotencyClaim.of(principal.tenant_id, idempotency_key, METHOD_PATH, body)
    answers: list[dict[str, Any]] = []

    async def record(conn: AsyncConnection, row: Any, first_time: bool) -> None:
        # the answer commits with the payment (one transaction less per request): built
        # from the inserted row, or, for a re-run, from the row and history as they are
        if first_time:
            history = [StatusChangeOut(status=row.status, at=row.created_at)]
        else:
            history = history_out((await conn.execute(history_query([row.id]))).all())
        answers.append(payment_out(row, history).model_dump(mode="json"))
        await answer_in(conn, claim, 202, answers[-1])

    account = await load_customer_account(engine, principal.tenant_id, body.account_id)
    if account is None:
        raise ProblemError(
            422, "account_not_found", f"No account {body.account_id}.", param="account_id"
        )
    creditor = checked_creditor(account, body)
    if body.execute_at is not None:
        check_future(body.execute_at, settings.schedules.max_ahead_days, "execute_at")
    # derived from the idempotency key: racing replicas, or a retry after a crash, name the
    # same payment, and the workflow id (= payment id) lets Temporal start it only once
    await initiate_payment(
        engine,
        temporal,
        settings,
        PaymentOrder(
            payment_id=derived_id("pay", principal.tenant_id, idempotency_key),
            tenant_id=principal.tenant_id,
            initiated_by=principal.name,
            key_id=principal.key_id,
            account_id=account.id,
            customer_id=account.customer_id,
            amount=body.amount,
            currency=body.currency,
            rail=body.rail,
            creditor=creditor,
            remittance_info=body.remittance_info,
            metadata=body.metadata,
            counterparty_id=body.counterparty_id,
            execute_at=body.execute_at,
        ),
        answer=record,
    )
    return 202, answers[-1]


def check_future(at: datetime, max_ahead_days: int, param: str) -> None:
    """422 unless `at` is in the future and at most `max_ahead_days` ahead."""
    now = datetime.now(UTC)
    if at <= now:
        raise ProblemError(
            422, "execute_at_in_past", f"{param} must be in the future.", param=param
        )
    if at > now + timedelta(days=max_ahead_days):
        raise ProblemError(
            422,
            "execute_at_too_far",
            f"{param} must be at most {max_ahead_days} days ahead.",
            param=param,
        )


def checked_creditor(account: Any, body: PaymentTemplate) -> dict[str, Any]:
    """A payment request's checks against its account and rail (`ProblemError` naming the
    field); returns the creditor as the payment keeps it (canonical, with its rail name).
    `POST /v1/payments` and every item of a payment batch pass the same checks."""
    check_currency(body.currency)
    if account.currency != body.currency:
        raise ProblemError(
            422, "currency_mismatch", f"Account holds {account.currency}.", param="currency"
        )
    if RAIL_CURRENCY[body.rail] != body.currency:
        raise ProblemError(
            422,
            "currency_not_supported_by_rail",
            f"Rail {body.rail} carries {RAIL_CURRENCY[body.rail]} only.",
            param="currency",
        )
    if (body.creditor is None) == (body.counterparty_id is None):
        raise ProblemError(
            422,
            "creditor_required",
            "Give exactly one of creditor and counterparty_id.",
            param="creditor",
        )
    rail_name = _rail_text(body.rail, body)
    if body.creditor is None:
        return {}  # from the counterparty, in the payment's transaction
    creditor = _validate_creditor(body.rail, body.creditor)
    return {**creditor.model_dump(exclude_none=True), "rail_name": rail_name}


@router.post(
    "",
    status_code=202,
    response_model=PaymentOut,
    responses=replayable(202)
    | problems(
        AUTHENTICATED,
        ORCHESTRATED,
        WITH_BODY,
        IDEMPOTENT,
        PAYMENT_CHECKS,
    ),
)
async def create_payment(
    body: PaymentCreate,
    principal: Writer,
    engine: Engine,
    temporal: Temporal,
    settings: AppSettings,
    idempotency_key: IdempotencyKey,
) -> JSONResponse:
    """Initiate a payment; answers 202 with the payment in `processing`, or in `scheduled`
    until its `execute_at`."""

    async def redeliver(answer: dict[str, Any]) -> None:
        # the payment committed with its answer; its event's webhook deliveries start only
        # after the commit, so an API that died in between left them unstarted
        if answer.get("id"):
            starter = DeliveryStarter(temporal, settings)
            await starter.restart(engine, payment_event_id(answer["id"], 0))

    return await run_idempotently(
        engine,
        principal,
        idempotency_key,
        METHOD_PATH,
        body,
        lambda: _start_payment(engine, temporal, settings, principal, body, idempotency_key),
        takeover_after=settings.api.idempotency_takeover_seconds,
        on_replay=redeliver,
        answered_by_handler=True,
    )


@router.get(
    "/{payment_id}",
    response_model=PaymentOut,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS, PAYMENT_NOT_FOUND),
)
async def get_payment(payment_id: PaymentIdPath, principal: Reader, engine: Engine) -> PaymentOut:
    """Status, failure, screening hits and status history of a payment."""
    return await load_payment(engine, principal.tenant_id, payment_id)


@router.get(
    "",
    response_model=PaymentList,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS, INVALID_CURSOR),
)
async def list_payments(
    principal: Reader,
    engine: Engine,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[str | None, Query(pattern=PAYMENT_ID)] = None,
    status: PaymentStatus | None = None,
    account_id: Annotated[str | None, Query(pattern=ACCOUNT_ID)] = None,
    batch_id: Annotated[str | None, Query(pattern=BATCH_ID)] = None,
    schedule_id: Annotated[str | None, Query(pattern=SCHEDULE_ID)] = None,
) -> PaymentList:
    """The tenant's payments, newest first; page with `starting_after=<last id>`."""
    after = None
    if starting_after is not None:
        async with engine.connect() as conn:
            cursor = (
                await conn.execute(payment_cursor_query(principal.tenant_id, starting_after))
            ).scalar_one_or_none()
        if cursor is None:
            raise ProblemError(
                422,
                "invalid_cursor",
                "starting_after is not a payment of yours.",
                param="starting_after",
            )
        after = (cursor, starting_after)
    query = payments_page_query(
        principal.tenant_id,
        limit=limit,
        after=after,
        status=status.value if status is not None else None,
        account_id=account_id,
        batch_id=batch_id,
        schedule_id=schedule_id,
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
        page = rows[:limit]
        since = min((row.created_at for row in page), default=None)
        history = (await conn.execute(history_query([row.id for row in page], since))).all()
    by_payment: dict[str, list[Any]] = {}
    for change in history:
        by_payment.setdefault(change.payment_id, []).append(change)
    return PaymentList(
        data=[payment_out(row, history_out(by_payment.get(row.id, []))) for row in page],
        has_more=len(rows) > limit,
    )


@router.post(
    "/{payment_id}/review",
    response_model=PaymentOut,
    responses=problems(
        AUTHENTICATED,
        ORCHESTRATED,
        WITH_BODY,
        PAYMENT_NOT_FOUND,
        FOUR_EYES_VIOLATION,
        REVIEW_TOKEN_INVALID,
        PAYMENT_NOT_IN_REVIEW,
    ),
)
async def review_payment(
    payment_id: PaymentIdPath,
    body: ReviewCreate,
    principal: Ops,
    engine: Engine,
    temporal: Temporal,
    settings: AppSettings,
) -> PaymentOut:
    """Approve (false positive) or reject a payment in review; the initiator may not review."""
    await payments_service.review_payment(
        engine,
        temporal,
        payment_id,
        decision=body.decision,
        reviewer=Reviewer(principal.name, principal.tenant_id),
        settings=settings.reviews,
        note=body.note,
        tenant_id=principal.tenant_id,
    )
    return await load_payment(engine, principal.tenant_id, payment_id)


@router.post(
    "/{payment_id}/cancel",
    status_code=202,
    response_model=PaymentOut,
    responses=problems(
        AUTHENTICATED,
        ORCHESTRATED,
        WITH_BODY,
        PAYMENT_NOT_FOUND,
        PAYMENT_NOT_CANCELABLE,
        PAYMENT_IN_SANCTIONS_REVIEW,
    ),
)
async def cancel_payment(
    payment_id: PaymentIdPath,
    body: CancelCreate,
    principal: Writer,
    engine: Engine,
    temporal: Temporal,
) -> PaymentOut:
    """Cancel a payment no money can leave yet: before submission, or in action_required once
    the bank confirms it has no record (the workflow asks it first). Not during a sanctions
    review (the review decides) nor once the bank paid."""
    payment = await load_payment(engine, principal.tenant_id, payment_id)
    await payments_service.cancel_payment(
        engine,
        temporal,
        payment_id,
        actor=principal.name,
        reason=body.reason,
        tenant_id=principal.tenant_id,
    )
    return payment


@router.post(
    "/{payment_id}/recall",
    status_code=202,
    response_model=PaymentOut,
    responses=problems(
        AUTHENTICATED,
        ORCHESTRATED,
        WITH_BODY,
        PAYMENT_NOT_FOUND,
        PAYMENT_NOT_RECALLABLE,
        PAYMENT_ALREADY_RECALLED,
        PAYMENT_CHECKS,
        RECALL_NOT_ALLOWED,
    ),
)
async def recall_payment(
    payment_id: PaymentIdPath,
    body: RecallCreate,
    principal: Writer,
    engine: Engine,
    temporal: Temporal,
    settings: AppSettings,
) -> PaymentOut:
    """Ask for a settled payment's money back: SEPA sends a camt.056 recall (accepted, the
    funds come back as a pacs.004 and the payment ends `returned`; rejected, it stays
    `settled` with the bank's reason in `recall.answer_reason`); ACH sends a reversal entry
    in a later file (DUPL and TECH only, within five banking days of settlement). The
    payment shows `recall.status: requested` until the bank answers."""
    await recalls_service.request_recall(
        engine,
        temporal,
        settings,
        payment_id,
        tenant_id=principal.tenant_id,
        actor=principal.name,
        reason=body.reason,
        note=body.note,
    )
    return await load_payment(engine, principal.tenant_id, payment_id)


@router.post(
    "/{payment_id}/retry",
    status_code=202,
    response_model=PaymentOut,
    responses=problems(
        AUTHENTICATED, ORCHESTRATED, WITH_BODY, PAYMENT_NOT_FOUND, PAYMENT_NOT_RETRYABLE
    ),
)
async def retry_payment(
    payment_id: PaymentIdPath, principal: Ops, engine: Engine, temporal: Temporal
) -> PaymentOut:
    """Ops: try the rail again for a payment in `action_required`."""
    payment = await load_payment(engine, principal.tenant_id, payment_id)
    await payments_service.retry_payment(
        engine, temporal, payment_id, actor=principal.name, tenant_id=principal.tenant_id
    )
    return payment
