"""Customer operations shared by the API (and the workflows' callers): onboard, review.

Onboarding inserts the customer as `pending`, starts its onboarding workflow (id = customer
id) and appends the `customer.created` audit record in one unit of work: if Temporal refuses
the start, nothing exists, and the audit record never outlives or precedes the customer. The
workflow's decisions (rules, then a four-eyes review) are persisted and audited by its
`record_kyc_decision` activity, in one unit of work as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy

from kernel.codec import note_tenant
from kernel.ids import new_id
from kernel.settings import ReviewSettings, Settings
from kernel.tables import customers
from services.errors import ConflictError
from services.reviews import Reviewer, send_review, signed_review
from services.unit_of_work import UnitOfWork
from workflows import search_attributes as sa
from workflows.models import KycStatus, OnboardingInput
from workflows.onboarding import OnboardingWorkflow


@dataclass(frozen=True)
class NewCustomer:
    """A validated onboarding request."""

    tenant_id: str
    created_by: str
    key_id: str
    type: str
    name: str
    country: str
    address: dict[str, Any]
    date_of_birth: date | None = None
    national_id: str | None = None
    tax_id: str | None = None
    registration_number: str | None = None


async def onboard_customer(
    engine: AsyncEngine, temporal: Client, settings: Settings, new: NewCustomer
) -> str:
    """Create the customer and start its onboarding (KYC) workflow; returns its id."""
    customer_id = new_id("cus")
    async with UnitOfWork(engine) as uow:
        await uow.conn.execute(
            customers.insert().values(
                id=customer_id,
                tenant_id=new.tenant_id,
                type=new.type,
                name=new.name,
                country=new.country,
                address=new.address,
                date_of_birth=new.date_of_birth,
                national_id=new.national_id,
                tax_id=new.tax_id,
                registration_number=new.registration_number,
                created_by=new.created_by,
                kyc_status=KycStatus.PENDING.value,
                kyc_reasons=[],
            )
        )
        # Started inside the transaction: if Temporal refuses, the customer rolls back and
        # nothing exists (the first activity retries until the insert is visible). The codec
        # labels the payloads with the tenant the row is not yet visible with.
        note_tenant(settings, customer_id, new.tenant_id)
        await temporal.start_workflow(
            OnboardingWorkflow.run,
            OnboardingInput(
                customer_id=customer_id,
                tenant_id=new.tenant_id,
                created_by=new.created_by,
                review_escalation_seconds=settings.reviews.escalation_seconds,
            ),
            id=customer_id,
            task_queue=settings.temporal.task_queue,
            rpc_timeout=timedelta(seconds=settings.api.temporal_rpc_timeout_seconds),
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.TENANT_ID, new.tenant_id),
                    SearchAttributePair(sa.CUSTOMER_ID, customer_id),
                    SearchAttributePair(sa.KYC_STATUS, KycStatus.PENDING.value),
                ]
            ),
        )
        uow.audit(
            actor=new.created_by,
            action="customer.created",
            subject=customer_id,
            tenant_id=new.tenant_id,
            detail={"key_id": new.key_id, "type": new.type, "country": new.country},
            idempotency_key=f"{customer_id}:created",
        )
    return customer_id


async def review_customer(
    temporal: Client,
    customer_id: str,
    *,
    decision: str,
    reviewer: Reviewer,
    settings: ReviewSettings,
    note: str,
    status: str,
) -> None:
    """Approve or reject a customer in KYC review (four-eyes: not whoever created it); the
    workflow records the decision with its audit record. `status` is the KYC status read."""
    handle = temporal.get_workflow_handle_for(OnboardingWorkflow.run, customer_id)
    await send_review(
        handle,
        OnboardingWorkflow.review,
        signed_review(settings, customer_id, decision, reviewer, note),
        ConflictError("customer_not_in_review", f"Customer KYC is {status}."),
    )
