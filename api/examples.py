"""An example answer for every response model, built from the models themselves.

Built as instances (not hand-written JSON), so an example that drifts from its model fails
at import; api.openapi puts each one on the operations answering with that model.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel

from api.fields import (
    EXAMPLE_ACCOUNT_ID,
    EXAMPLE_BATCH_ID,
    EXAMPLE_COUNTERPARTY_ID,
    EXAMPLE_CUSTOMER_ID,
    EXAMPLE_DEPOSIT_ID,
    EXAMPLE_PAYMENT_ID,
    EXAMPLE_SCHEDULE_ID,
)
from api.schemas import (
    AccountOut,
    Address,
    Balances,
    CounterpartyList,
    CounterpartyOut,
    CounterpartyScreeningOut,
    CustomerOut,
    DepositList,
    DepositOut,
    EntryList,
    EntryOut,
    ErasureOut,
    EventList,
    EventOut,
    Kyc,
    PaymentBatchItemList,
    PaymentBatchItemOut,
    PaymentBatchOut,
    PaymentList,
    PaymentOut,
    PaymentScheduleList,
    PaymentScheduleOut,
    ScreeningHitOut,
    ScreeningOut,
    StatusChangeOut,
    VerificationOut,
    WebhookEndpointList,
    WebhookEndpointOut,
)

AT = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)

BATCH = PaymentBatchOut(
    id=EXAMPLE_BATCH_ID,
    status="processing",
    reference="payroll-2026-12",
    source="json",
    item_count=3,
    totals={"EUR": 750000},
    counts={"pending": 1, "submitted": 1, "settled": 1},
    needs_review=False,
    created_at=AT,
)
BATCH_ITEM = PaymentBatchItemOut(
    id=EXAMPLE_PAYMENT_ID,
    index=0,
    line=None,
    reference="payroll-2026-12-0001",
    status="settled",
    amount=250000,
    currency="EUR",
    rail="sepa",
)

SCHEDULE = PaymentScheduleOut(
    id=EXAMPLE_SCHEDULE_ID,
    status="active",
    payment={
        "account_id": EXAMPLE_ACCOUNT_ID,
        "customer_id": EXAMPLE_CUSTOMER_ID,
        "amount": 120000,
        "currency": "EUR",
        "rail": "sepa",
        "creditor": {
            "name": "Hausverwaltung Meier",
            "country": "DE",
            "iban": "DE89370400440532013000",
        },
        "remittance_info": "Rent",
        "metadata": {},
        "counterparty_id": None,
    },
    interval_seconds=None,
    calendar={
        "day_of_month": 1,
        "day_of_week": None,
        "hour": 9,
        "minute": 0,
        "timezone": "Europe/Berlin",
    },
    start_at=AT,
    end_at=None,
    business_day_convention="following",
    reference="rent",
    created_at=AT,
)

CUSTOMER = CustomerOut(
    id=EXAMPLE_CUSTOMER_ID,
    type="individual",
    name="Ada Lovelace",
    country="GB",
    address=Address(
        line1="12 St James's Square", city="London", postal_code="SW1Y 4JH", country="GB"
    ),
    date_of_birth=date(1990, 12, 10),
    kyc=Kyc(
        status="approved",
        risk_tier="low",
        review_date=date(2027, 1, 15),
        reasons=[],
        list_versions={"sanctions": "2026-01-14", "pep": "2026-01-14"},
        screened_at=AT,
        decided_at=AT,
        decided_by="kyc-rules",
    ),
    created_at=AT,
)
ACCOUNT = AccountOut(
    id=EXAMPLE_ACCOUNT_ID,
    customer_id=EXAMPLE_CUSTOMER_ID,
    currency="EUR",
    balances=Balances(posted=100000, pending=-2500, available=97500),
    created_at=AT,
)
DEPOSIT = DepositOut(
    id=EXAMPLE_DEPOSIT_ID,
    account_id=EXAMPLE_ACCOUNT_ID,
    amount=100000,
    currency="EUR",
    status="credited",
    bank_reference="BNK-20260114-000123",
    created_by="ops-olga",
    created_at=AT,
)
ENTRY = EntryOut(
    id=f"{EXAMPLE_ACCOUNT_ID}:2",
    account_id=EXAMPLE_ACCOUNT_ID,
    version=2,
    transfer_id=f"{EXAMPLE_PAYMENT_ID}:hold",
    posted_change=0,
    pending_change=-2500,
    balances_after=Balances(posted=100000, pending=-2500, available=97500),
    created_at=AT,
)
PAYMENT = PaymentOut(
    id=EXAMPLE_PAYMENT_ID,
    status="processing",
    account_id=EXAMPLE_ACCOUNT_ID,
    customer_id=EXAMPLE_CUSTOMER_ID,
    amount=2500,
    currency="EUR",
    rail="sepa",
    creditor={"name": "Erika Mustermann", "country": "DE", "iban": "DE89370400440532013000"},
    remittance_info="Invoice 42",
    metadata={"order": "42"},
    failure=None,
    screening_hits=[],
    status_history=[StatusChangeOut(status="processing", at=AT)],
    created_at=AT,
)
ENDPOINT = WebhookEndpointOut(
    id="we_01jdz3n2p4q6r8s0t2v4w6x8y0",
    url="https://partner.example/webhooks",
    description="ops",
    enabled=True,
    secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # noqa: S106 - a documentation example
    created_at=AT,
)
EVENT = EventOut(
    id=f"evt_{EXAMPLE_PAYMENT_ID.removeprefix('pay_')}_01",
    type="payment.processing",
    created_at=AT,
    data={"payment_id": EXAMPLE_PAYMENT_ID, "status": "processing"},
)
SCREENING = ScreeningOut(
    id="scr_01jdz3p4r6s8t0v2w4x6y8z0a2",
    name="Banco Nacional de Cuba",
    decision="block",
    hits=[
        ScreeningHitOut(
            list="ofac-sdn",
            list_version="2026-01-14",
            entity_id="ofac-306",
            matched_name="BANCO NACIONAL DE CUBA",
            score=1.0,
            decision="block",
            explanation="exact match of the listed name",
        )
    ],
    list_versions=["2026-01-14"],
)

COUNTERPARTY = CounterpartyOut(
    id=EXAMPLE_COUNTERPARTY_ID,
    rail="sepa",
    type="individual",
    name="Erika Mustermann",
    country="DE",
    iban="DE89370400440532013000",
    bic=None,
    routing_number=None,
    account_number=None,
    account_type=None,
    verification=VerificationOut(status="verified", method="vop", verified_at=AT),
    screening=CounterpartyScreeningOut(
        decision="clear", hits=[], list_versions=["2026-01-14"], screened_at=AT
    ),
    disabled=False,
    disabled_at=None,
    created_at=AT,
    updated_at=AT,
)


def _examples() -> dict[str, BaseModel]:
    from api.routers.reconciliations import ReconciliationList, ReconciliationOut

    run = ReconciliationOut(
        id="rec_sepa_2026-01-14",
        statement_date=date(2026, 1, 14),
        rail="sepa",
        status="matched",
        matched=12,
        statement_entries=12,
        ledger_entries=12,
    )
    return {
        "CustomerOut": CUSTOMER,
        "ErasureOut": ErasureOut(
            customer_id=EXAMPLE_CUSTOMER_ID,
            erased_at=datetime(2026, 12, 7, 14, 30, tzinfo=UTC),
            payments=2,
            keys_shredded=3,
            legal_hold_until=datetime(2031, 12, 6, 14, 30, tzinfo=UTC),
            already_erased=False,
        ),
        "AccountOut": ACCOUNT,
        "DepositOut": DEPOSIT,
        "DepositList": DepositList(data=[DEPOSIT], has_more=False),
        "EntryList": EntryList(data=[ENTRY], has_more=False),
        "PaymentOut": PAYMENT,
        "PaymentList": PaymentList(data=[PAYMENT], has_more=False),
        "WebhookEndpointOut": ENDPOINT,
        "WebhookEndpointList": WebhookEndpointList(
            data=[ENDPOINT.model_copy(update={"secret": None})], has_more=False
        ),
        "EventList": EventList(data=[EVENT], has_more=False),
        "ScreeningOut": SCREENING,
        "CounterpartyOut": COUNTERPARTY,
        "CounterpartyList": CounterpartyList(data=[COUNTERPARTY], has_more=False),
        "ReconciliationOut": run,
        "PaymentBatchOut": BATCH,
        "PaymentScheduleOut": SCHEDULE,
        "PaymentScheduleList": PaymentScheduleList(data=[SCHEDULE], has_more=False),
        "PaymentBatchItemList": PaymentBatchItemList(data=[BATCH_ITEM], has_more=False),
        "ReconciliationList": ReconciliationList(data=[run], has_more=False),
    }


def response_example(schema_name: str) -> dict[str, Any] | None:
    """The example answer of the response model named `schema_name`, as JSON."""
    model = _examples().get(schema_name)
    return None if model is None else model.model_dump(mode="json")
