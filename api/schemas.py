"""Request and response bodies of the v1 API. Requests reject unknown fields."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

# ISO 4217 currencies the platform holds accounts in, with their minor units
CURRENCIES: dict[str, int] = {"EUR": 2, "USD": 2}
MAX_AMOUNT = 100_000_000_000  # 1bn in minor units: above that, a human should be involved

Amount = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT, examples=[12500])]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])]
Country = Annotated[str, Field(pattern=r"^[A-Z]{2}$", examples=["DE"])]
Name = Annotated[str, Field(min_length=1, max_length=140, pattern=r"^[^\x00-\x1f\x7f]+$")]


class Strict(BaseModel):
    """Base for request bodies: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Address(Strict):
    """A postal address."""

    line1: Annotated[str, Field(min_length=1, max_length=140)]
    city: Annotated[str, Field(min_length=1, max_length=70)]
    postal_code: Annotated[str, Field(min_length=1, max_length=16)]
    country: Country


class CustomerCreate(Strict):
    """Onboard a customer (KYC runs at once)."""

    type: Literal["individual", "business"]
    name: Name
    country: Country
    address: Address
    date_of_birth: date | None = None
    national_id: Annotated[str, Field(max_length=64)] | None = None
    registration_number: Annotated[str, Field(max_length=64)] | None = None


class Kyc(BaseModel):
    """A customer's KYC outcome."""

    status: str
    risk_tier: str | None
    review_date: date | None
    reasons: list[str]


class CustomerOut(BaseModel):
    """A customer."""

    id: str
    object: Literal["customer"] = "customer"
    type: str
    name: str
    country: str
    address: Address | None
    date_of_birth: date | None
    kyc: Kyc
    created_at: datetime


class AccountCreate(Strict):
    """Open a ledger account for a customer in one currency."""

    customer_id: str
    currency: Currency


class Balances(BaseModel):
    """Balances in minor units: posted, pending (net reservations), available to spend."""

    posted: int
    pending: int
    available: int


class AccountOut(BaseModel):
    """A customer's ledger account."""

    id: str
    object: Literal["account"] = "account"
    customer_id: str
    currency: str
    balances: Balances
    created_at: datetime


class DepositCreate(Strict):
    """Credit incoming funds to an account (ops)."""

    account_id: str
    amount: Amount
    currency: Currency


class DepositOut(BaseModel):
    """A credited deposit."""

    id: str
    object: Literal["deposit"] = "deposit"
    account_id: str
    amount: int
    currency: str
    created_at: datetime


class CreditorIn(Strict):
    """Who receives a payment: IBAN (+BIC) for SEPA, routing + account number for ACH."""

    name: Name
    country: Country
    iban: Annotated[str, Field(min_length=5, max_length=42)] | None = None
    bic: Annotated[str, Field(min_length=8, max_length=11)] | None = None
    routing_number: Annotated[str, Field(pattern=r"^[0-9]{9}$")] | None = None
    account_number: Annotated[str, Field(pattern=r"^[0-9]{1,17}$")] | None = None


class PaymentCreate(Strict):
    """Initiate a payment from a customer account."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "account_id": "acc_01jdz…",
                    "amount": 2500,
                    "currency": "EUR",
                    "rail": "sepa",
                    "creditor": {
                        "name": "Erika Mustermann",
                        "country": "DE",
                        "iban": "DE89370400440532013000",
                    },
                    "remittance_info": "Invoice 42",
                }
            ]
        },
    )

    account_id: str
    amount: Amount
    currency: Currency
    rail: Literal["sepa", "ach"]
    creditor: CreditorIn
    remittance_info: Annotated[str, Field(max_length=140)] | None = None
    metadata: Annotated[dict[str, Annotated[str, Field(max_length=500)]], Field(max_length=20)] = (
        Field(default_factory=dict)
    )


class FailureOut(BaseModel):
    """Why a payment did not settle."""

    code: str
    message: str
    reason_code: str | None = None


class StatusChangeOut(BaseModel):
    """One step of a payment's status history."""

    status: str
    at: datetime


class PaymentOut(BaseModel):
    """A payment with its status, failure, screening hits and status history."""

    id: str
    object: Literal["payment"] = "payment"
    status: str
    account_id: str
    customer_id: str
    amount: int
    currency: str
    rail: str
    creditor: dict[str, str | None]
    remittance_info: str | None
    metadata: dict[str, str]
    failure: FailureOut | None
    screening_hits: list[dict[str, Any]]
    status_history: list[StatusChangeOut]
    created_at: datetime


class ReviewCreate(Strict):
    """A compliance decision on a payment in review."""

    decision: Literal["approve", "reject"]
    note: Annotated[str, Field(max_length=1000)] = ""


class PaymentList(BaseModel):
    """A page of payments, newest first."""

    object: Literal["list"] = "list"
    data: list[PaymentOut]
    has_more: bool


class EntryOut(BaseModel):
    """One movement on an account, with the balances right after it."""

    id: str
    object: Literal["entry"] = "entry"
    account_id: str
    version: int
    transfer_id: str
    posted_change: int  # credits minus debits, as the account holder sees it
    pending_change: int
    balances_after: Balances
    created_at: datetime | None


class EntryList(BaseModel):
    """A page of entries, newest first."""

    object: Literal["list"] = "list"
    data: list[EntryOut]
    has_more: bool
