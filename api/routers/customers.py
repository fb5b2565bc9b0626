"""Customers: onboarding with KYC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from api.deps import Engine, Reader, Writer
from api.errors import ProblemError
from api.schemas import CustomerCreate, CustomerOut, Kyc
from compliance.kyc import CustomerFacts, evaluate
from payments import audit
from payments.ids import new_id
from payments.tables import customers

router = APIRouter(prefix="/v1/customers", tags=["customers"])


def customer_out(row: Any) -> CustomerOut:
    """Render a customer row."""
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
        ),
        created_at=row.created_at,
    )


@router.post("", status_code=201, response_model=CustomerOut)
async def create_customer(body: CustomerCreate, principal: Writer, engine: Engine) -> CustomerOut:
    """Onboard a customer; KYC rules decide `kyc.status` and `kyc.risk_tier` at once."""
    decision = evaluate(
        CustomerFacts(
            type=body.type,
            name=body.name,
            country=body.country,
            address=body.address.model_dump(),
            date_of_birth=body.date_of_birth,
            national_id=body.national_id,
            registration_number=body.registration_number,
        ),
        today=datetime.now(UTC).date(),
    )
    customer_id = new_id("cus")
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                customers.insert()
                .values(
                    id=customer_id,
                    tenant_id=principal.tenant_id,
                    type=body.type,
                    name=body.name,
                    country=body.country,
                    address=body.address.model_dump(),
                    date_of_birth=body.date_of_birth,
                    national_id=body.national_id,
                    registration_number=body.registration_number,
                    kyc_status=decision.status,
                    kyc_risk_tier=decision.risk_tier,
                    kyc_reasons=decision.reasons,
                    kyc_review_date=decision.review_date,
                )
                .returning(*customers.c)
            )
        ).one()
    await audit.append(
        engine,
        actor=principal.name,
        action="kyc.decided",
        subject=customer_id,
        tenant_id=principal.tenant_id,
        detail={
            "status": decision.status,
            "risk_tier": decision.risk_tier,
            "reasons": decision.reasons,
            "review_date": decision.review_date.isoformat(),
        },
        idempotency_key=f"{customer_id}:kyc",
    )
    return customer_out(row)


@router.get("/{customer_id}", response_model=CustomerOut)
async def get_customer(customer_id: str, principal: Reader, engine: Engine) -> CustomerOut:
    """Read a customer and its KYC outcome."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(customers).where(
                    customers.c.id == customer_id, customers.c.tenant_id == principal.tenant_id
                )
            )
        ).first()
    if row is None:
        raise ProblemError(404, "customer_not_found", f"No customer {customer_id}.")
    return customer_out(row)
