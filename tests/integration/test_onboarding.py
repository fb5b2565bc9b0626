"""Customer onboarding through the real API, worker, Temporal and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import httpx
import pytest
from sqlalchemy import select

from kernel.api_keys import create_key
from kernel.db import dispose_engines, get_engine
from kernel.ids import new_id
from kernel.tables import audit_log, customers
from ops.devstack import Stack
from tests.integration.helpers import (
    TERMINAL,
    Tenant,
    create_customer,
    pay,
    payment_body,
    wait_for_status,
)

# a fictional politically exposed person of the bundled PEP sample
PEP_NAME = "Lucinda Pemberwick"


@pytest.fixture
async def solo(tenant: Tenant, stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A principal that may both create customers and review them (four-eyes still applies)."""
    engine = get_engine(stack.settings)
    async with engine.begin() as conn:
        key = await create_key(
            conn,
            tenant_id=tenant.tenant_id,
            principal="solo-sam",
            scopes=["payments:write", "payments:read", "ops"],
        )
    await dispose_engines()
    async with httpx.AsyncClient(
        base_url=stack.settings.api.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as client:
        yield client


async def audit_actions(stack: Stack, subject: str) -> list[tuple[str, str]]:
    engine = get_engine(stack.settings)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(audit_log.c.action, audit_log.c.actor)
                .where(audit_log.c.subject == subject)
                .order_by(audit_log.c.seq)
            )
        ).all()
    await dispose_engines()
    return [(row.action, row.actor) for row in rows]


def years_later(years: int) -> str:
    today = datetime.now(UTC).date()
    return today.replace(year=today.year + years).isoformat()


async def test_adult_customer_is_approved_with_its_screening_recorded(
    tenant: Tenant, stack: Stack
) -> None:
    customer = await create_customer(tenant.partner, national_id="QQ123456C")
    kyc = customer["kyc"]
    assert (kyc["status"], kyc["risk_tier"], kyc["hits"]) == ("approved", "low", [])
    assert kyc["review_date"] == years_later(3)
    assert kyc["decided_by"] == "kyc-rules"
    # every screening records the list versions it was screened against
    assert set(kyc["list_versions"]) == {"OFAC-SDN", "PEP"}
    # stdnum knows no British national id: accepted, and said so
    assert kyc["notes"] == ["national_id format not verified: no known national_id format for GB"]
    read = await tenant.partner.get(f"/v1/customers/{customer['id']}")
    assert read.status_code == 200
    assert read.json() == customer
    actions = await audit_actions(stack, customer["id"])
    assert sorted(actions) == [
        ("customer.created", "partner-app"),
        ("kyc.decided", "kyc-rules"),
        ("screening.completed", "screening"),
    ]


async def test_formats_and_required_fields_are_enforced(tenant: Tenant) -> None:
    berlin = {
        "line1": "Unter den Linden 1",
        "city": "Berlin",
        "postal_code": "10117",
        "country": "DE",
    }
    bad_id = await create_customer(
        tenant.partner, country="DE", address=berlin, national_id="36574261808"
    )
    assert bad_id["kyc"]["status"] == "rejected"
    assert bad_id["kyc"]["reasons"] == [
        "national_id is not a valid DE IdNr: The number's checksum or check digit is invalid."
    ]
    company = await create_customer(
        tenant.partner,
        type="business",
        name="Beispiel Maschinenbau GmbH",
        country="DE",
        address=berlin,
        date_of_birth=None,
        registration_number="Berlin HRB 12345",
        tax_id="DE136695976",
    )
    assert (company["kyc"]["status"], company["kyc"]["risk_tier"]) == ("approved", "medium")
    unregistered = await create_customer(
        tenant.partner, type="business", name="Nameless Ltd", date_of_birth=None
    )
    assert unregistered["kyc"]["status"] == "rejected"
    assert (
        "registration_number is required for business customers" in (unregistered["kyc"]["reasons"])
    )
    sanctioned_country = await create_customer(tenant.partner, country="KP")
    assert (sanctioned_country["kyc"]["status"], sanctioned_country["kyc"]["risk_tier"]) == (
        "rejected",
        "high",
    )


async def test_pep_goes_to_review_and_another_ops_principal_approves(
    tenant: Tenant, solo: httpx.AsyncClient, stack: Stack
) -> None:
    customer = await create_customer(solo, name=PEP_NAME, date_of_birth="1980-04-02")
    kyc = customer["kyc"]
    assert (kyc["status"], kyc["risk_tier"]) == ("in_review", "high")
    assert [hit["entity_id"] for hit in kyc["hits"]] == ["PEP-FICT-007"]
    assert kyc["hits"][0]["list"] == "PEP"
    assert kyc["hits"][0]["list_version"] == kyc["list_versions"]["PEP"]
    assert kyc["reasons"][0].startswith("politically exposed person: matches PEP PEP-FICT-007")

    # the creator cannot review; a partner key cannot review at all
    refused = await solo.post(
        f"/v1/customers/{customer['id']}/review", json={"decision": "approve"}
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "four_eyes_violation"
    no_scope = await tenant.partner.post(
        f"/v1/customers/{customer['id']}/review", json={"decision": "approve"}
    )
    assert (no_scope.status_code, no_scope.json()["code"]) == (403, "insufficient_scope")

    approved = await tenant.ops.post(
        f"/v1/customers/{customer['id']}/review",
        json={"decision": "approve", "note": "EDD done: source of wealth verified"},
    )
    assert approved.status_code == 200, approved.text
    kyc = approved.json()["kyc"]
    assert (kyc["status"], kyc["risk_tier"], kyc["decided_by"]) == ("approved", "high", "ops-olga")
    assert kyc["review_note"] == "EDD done: source of wealth verified"
    assert kyc["review_date"] == years_later(1)
    assert kyc["reasons"][-1] == "approved on review by ops-olga"

    again = await tenant.ops.post(
        f"/v1/customers/{customer['id']}/review", json={"decision": "reject"}
    )
    assert (again.status_code, again.json()["code"]) == (409, "customer_not_in_review")
    actions = await audit_actions(stack, customer["id"])
    assert ("kyc.decided", "kyc-rules") in actions
    assert actions[-1] == ("kyc.review.approve", "ops-olga")


async def test_customer_in_review_cannot_pay(tenant: Tenant) -> None:
    customer = await create_customer(tenant.partner, name=PEP_NAME, date_of_birth="1980-04-02")
    assert customer["kyc"]["status"] == "in_review"
    opened = await tenant.partner.post(
        "/v1/accounts", json={"customer_id": customer["id"], "currency": "EUR"}
    )
    assert opened.status_code == 201, opened.text
    account_id = opened.json()["id"]
    deposit = await tenant.ops.post(
        "/v1/deposits",
        json={"account_id": account_id, "amount": 500, "currency": "EUR"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert deposit.status_code == 201, deposit.text
    payment = await pay(tenant.partner, payment_body(account_id, 100))
    final = await wait_for_status(tenant.partner, payment["id"], TERMINAL)
    assert final["status"] == "rejected"
    assert final["failure"]["code"] == "kyc_not_approved"


async def test_customers_onboarded_before_the_workflow_still_read(
    tenant: Tenant, stack: Stack
) -> None:
    customer_id = new_id("cus")
    engine = get_engine(stack.settings)
    async with engine.begin() as conn:
        await conn.execute(
            customers.insert().values(
                id=customer_id,
                tenant_id=tenant.tenant_id,
                type="individual",
                name="Grace Hopper",
                country="US",
                date_of_birth=date(1906, 12, 9),
                kyc_status="in_review",
                kyc_risk_tier="high",
                kyc_reasons=["decided inline, before onboarding workflows"],
                kyc_review_date=date(2027, 1, 1),
            )
        )
    await dispose_engines()
    read = await tenant.partner.get(f"/v1/customers/{customer_id}")
    assert read.status_code == 200, read.text
    kyc = read.json()["kyc"]
    assert (kyc["status"], kyc["hits"], kyc["list_versions"]) == ("in_review", [], {})
    # no workflow to decide it: a review is refused, not lost
    review = await tenant.ops.post(
        f"/v1/customers/{customer_id}/review", json={"decision": "approve"}
    )
    assert (review.status_code, review.json()["code"]) == (409, "customer_not_in_review")
    other = await tenant.ops.get(f"/v1/customers/{new_id('cus')}")
    assert other.status_code == 404
