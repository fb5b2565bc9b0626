"""Customers: onboarding (starts the onboarding workflow), read, four-eyes KYC review.

POST /v1/customers inserts the customer as `pending` and starts its onboarding workflow (id =
customer id) in the same transaction, then waits up to `screening.onboarding_wait_seconds` for
the workflow's first decision (the `decided` update, answered once the decision is persisted)
and answers 201 with the customer as the database then shows it: normally `approved`,
`in_review` or `rejected`; `pending` when the decision takes longer (a worker is down, say),
in which case the client reads the customer again later.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError

from api.deps import AppSettings, Engine, Ops, Reader, Temporal, Writer
from api.errors import ProblemError
from api.fields import CUSTOMER_ID, EXAMPLE_CUSTOMER_ID
from api.problems import (
    AUTHENTICATED,
    CUSTOMER_HAS_BALANCE,
    CUSTOMER_HAS_OPEN_PAYMENTS,
    CUSTOMER_NOT_FOUND,
    CUSTOMER_NOT_IN_REVIEW,
    FOUR_EYES_VIOLATION,
    ORCHESTRATED,
    REVIEW_TOKEN_INVALID,
    WITH_BODY,
    WITH_PARAMETERS,
    problems,
)
from api.schemas import (
    CustomerCreate,
    CustomerOut,
    ErasureCreate,
    ErasureOut,
    Kyc,
    ReviewCreate,
    ScreeningHitOut,
)
from kernel.tables import customers
from services import customers as customer_service
from services.customers import NewCustomer, onboard_customer
from services.erasure import erase_customer
from services.reviews import Reviewer
from workflows.onboarding import OnboardingWorkflow

router = APIRouter(prefix="/v1/customers", tags=["customers"])
CustomerIdPath = Annotated[str, Path(pattern=CUSTOMER_ID, examples=[EXAMPLE_CUSTOMER_ID])]


def _hit_out(hit: dict[str, Any]) -> ScreeningHitOut:
    return ScreeningHitOut(
        list=hit["list_name"],
        list_version=hit["list_version"],
        entity_id=hit["entity_id"],
        matched_name=hit["matched_name"],
        score=hit["score"],
        # a PEP match at any score means review (the rules never block on a PEP)
        decision="block" if hit.get("decision") == "block" else "review",
        explanation=hit.get("explanation", ""),
    )


def customer_out(row: Any) -> CustomerOut:
    """Render a customer row (customers onboarded before the workflow read the same way)."""
    return CustomerOut(
        id=row.id,
        type=row.type,
        name=row.name,
        country=row.country,
        address=row.address,
        date_of_birth=row.date_of_birth,
        kyc=Kyc(
            status=row.kyc_status,
            risk_tier=row.kyc_risk_tier,
            review_date=row.kyc_review_date,
            reasons=row.kyc_reasons,
            notes=row.kyc_notes,
            hits=[_hit_out(hit) for hit in row.screening_hits],
            list_versions=row.screening_list_versions,
            screened_at=row.screened_at,
            watchlist_flagged_at=row.watchlist_flagged_at,
            decided_at=row.kyc_decided_at,
            decided_by=row.kyc_decided_by,
            review_note=row.kyc_review_note,
        ),
        created_at=row.created_at,
        erased_at=row.erased_at,
    )


async def load_customer(engine: AsyncEngine, tenant_id: str, customer_id: str) -> Any:
    """The tenant's customer row (another tenant's id is simply not found)."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(customers).where(
                    customers.c.id == customer_id, customers.c.tenant_id == tenant_id
                )
            )
        ).first()
    if row is None:
        raise ProblemError(404, "customer_not_found", f"No customer {customer_id}.")
    return row


async def _await_decision(temporal: Client, customer_id: str, seconds: float) -> None:
    """Wait (bounded) until the onboarding workflow has persisted its first decision."""
    if seconds <= 0:
        return
    handle = temporal.get_workflow_handle_for(OnboardingWorkflow.run, customer_id)
    # a workflow that already finished (approved or rejected at once) answers with an error:
    # its decision is in the database either way
    with contextlib.suppress(
        TimeoutError, RPCError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
    ):
        async with asyncio.timeout(seconds):
            await handle.execute_update(
                OnboardingWorkflow.decided, rpc_timeout=timedelta(seconds=seconds)
            )


@router.post(
    "",
    status_code=201,
    response_model=CustomerOut,
    responses=problems(AUTHENTICATED, ORCHESTRATED, WITH_BODY),
)
async def create_customer(
    body: CustomerCreate,
    principal: Writer,
    engine: Engine,
    temporal: Temporal,
    settings: AppSettings,
) -> CustomerOut:
    """Onboard a customer: screening and KYC rules decide `kyc.status` and `kyc.risk_tier`
    (`pending` if the decision takes longer than a few seconds)."""
    customer_id = await onboard_customer(
        engine,
        temporal,
        settings,
        NewCustomer(
            tenant_id=principal.tenant_id,
            created_by=principal.name,
            key_id=principal.key_id,
            type=body.type,
            name=body.name,
            country=body.country,
            address=body.address.model_dump(),
            date_of_birth=body.date_of_birth,
            national_id=body.national_id,
            tax_id=body.tax_id,
            registration_number=body.registration_number,
        ),
    )
    await _await_decision(temporal, customer_id, settings.screening.onboarding_wait_seconds)
    return customer_out(await load_customer(engine, principal.tenant_id, customer_id))


@router.get(
    "/{customer_id}",
    response_model=CustomerOut,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS, CUSTOMER_NOT_FOUND),
)
async def get_customer(
    customer_id: CustomerIdPath, principal: Reader, engine: Engine
) -> CustomerOut:
    """Read a customer: KYC status, risk tier, re-verification date, reasons, screening."""
    return customer_out(await load_customer(engine, principal.tenant_id, customer_id))


@router.post(
    "/{customer_id}/review",
    response_model=CustomerOut,
    responses=problems(
        AUTHENTICATED,
        ORCHESTRATED,
        WITH_BODY,
        CUSTOMER_NOT_FOUND,
        FOUR_EYES_VIOLATION,
        REVIEW_TOKEN_INVALID,
        CUSTOMER_NOT_IN_REVIEW,
    ),
)
async def review_customer(
    customer_id: CustomerIdPath,
    body: ReviewCreate,
    principal: Ops,
    engine: Engine,
    temporal: Temporal,
    settings: AppSettings,
) -> CustomerOut:
    """Approve or reject a customer in KYC review; whoever created the customer may not."""
    row = await load_customer(engine, principal.tenant_id, customer_id)
    await customer_service.review_customer(
        temporal,
        customer_id,
        decision=body.decision,
        reviewer=Reviewer(principal.name, principal.tenant_id),
        settings=settings.reviews,
        note=body.note,
        status=row.kyc_status,
    )
    # the workflow records the decision (customer row, audit entry with the reviewer)
    return customer_out(await load_customer(engine, principal.tenant_id, customer_id))


@router.post(
    "/{customer_id}/erase",
    response_model=ErasureOut,
    responses=problems(
        AUTHENTICATED,
        WITH_BODY,
        CUSTOMER_NOT_FOUND,
        CUSTOMER_HAS_OPEN_PAYMENTS,
        CUSTOMER_HAS_BALANCE,
    ),
)
async def erase(
    customer_id: CustomerIdPath,
    body: ErasureCreate,
    principal: Ops,
    engine: Engine,
    temporal: Temporal,
    settings: AppSettings,
) -> ErasureOut:
    """Erase the customer's personal data (scope `ops`): from every table, event, webhook
    log and stored response, and from Temporal's histories by shredding their data keys.
    Refused while a payment is not over (409 `customer_has_open_payments`) or an account
    holds money (409 `customer_has_balance`). Ids, amounts, the ledger and the audit chain
    stay; what AML law requires is kept sealed until the legal hold ends. Repeating it
    answers the first erasure."""
    report = await erase_customer(
        engine,
        temporal,
        settings,
        customer_id=customer_id,
        tenant_id=principal.tenant_id,
        actor=principal.name,
        reason=body.reason or None,
    )
    return ErasureOut(
        customer_id=report.customer_id,
        erased_at=report.erased_at,
        payments=report.payments,
        keys_shredded=report.keys_shredded,
        legal_hold_until=report.legal_hold_until,
        already_erased=report.already,
    )
