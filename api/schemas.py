"""Request and response bodies of the v1 API. Requests reject unknown fields."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from api.fields import (
    BANK_REFERENCE,
    CURRENCIES,
    EXAMPLE_ACCOUNT_ID,
    EXAMPLE_CUSTOMER_ID,
    MAX_AMOUNT,
    NO_NUL,
    WEBHOOK_URL,
    AccountId,
    Amount,
    CounterpartyId,
    Country,
    Currency,
    CustomerId,
    IsoDate,
    Name,
)
from rails.charset import NACHA_MAX_AMOUNT, SEPA_MAX_AMOUNT

__all__ = ["CURRENCIES", "MAX_AMOUNT"]  # re-exported: routers and tests read them from here

# free text: any characters but NUL (the server refuses NUL in every field)
Text16 = Annotated[str, StringConstraints(min_length=1, max_length=16, pattern=NO_NUL)]
Text64 = Annotated[str, StringConstraints(max_length=64, pattern=NO_NUL)]
Text70 = Annotated[str, StringConstraints(min_length=1, max_length=70, pattern=NO_NUL)]
Text140 = Annotated[str, StringConstraints(max_length=140, pattern=NO_NUL)]
NonEmptyText140 = Annotated[str, StringConstraints(min_length=1, max_length=140, pattern=NO_NUL)]
Text200 = Annotated[str, StringConstraints(max_length=200, pattern=NO_NUL)]
Text500 = Annotated[str, StringConstraints(max_length=500, pattern=NO_NUL)]
Text1000 = Annotated[str, StringConstraints(max_length=1000, pattern=NO_NUL)]
MetadataKey = Annotated[str, StringConstraints(pattern=NO_NUL)]


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class Strict(BaseModel):
    """Base for request bodies: unknown fields are an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL; refuse it here rather than fail in the database
        if _has_nul(value):
            raise ValueError("must not contain NUL characters")
        return value


class Address(Strict):
    """A postal address."""

    line1: NonEmptyText140
    city: Text70
    postal_code: Text16
    country: Country


class CustomerCreate(Strict):
    """Onboard a customer: starts its onboarding workflow (screening and KYC rules).

    Required by type: individuals need `date_of_birth`, businesses `registration_number`.
    `national_id`, `tax_id` and `registration_number` are checked against the formats of
    `country` where the platform knows them.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "individual",
                    "name": "Ada Lovelace",
                    "country": "GB",
                    "date_of_birth": "1990-12-10",
                    "address": {
                        "line1": "12 St James's Square",
                        "city": "London",
                        "postal_code": "SW1Y 4JH",
                        "country": "GB",
                    },
                }
            ]
        },
    )

    type: Literal["individual", "business"]
    name: Name
    country: Country
    address: Address
    date_of_birth: IsoDate | None = None
    national_id: Text64 | None = None
    registration_number: Text64 | None = None
    tax_id: Text64 | None = None


class Kyc(BaseModel):
    """A customer's KYC outcome: `pending` until the onboarding workflow decides, then
    `approved`, `in_review` (a four-eyes review decides) or `rejected`."""

    status: Literal["pending", "approved", "in_review", "rejected"]
    risk_tier: str | None
    # the re-verification date; payments need an approved KYC that has not reached it
    review_date: date | None
    reasons: list[str]
    # facts that could not be verified (e.g. an identifier format unknown for the country)
    notes: list[str] = []
    # the latest screening of the customer (sanctions and PEP lists) and its list versions
    hits: list[ScreeningHitOut] = []
    list_versions: dict[str, str] = {}
    screened_at: datetime | None = None
    # set when a list update brought a hit the customer did not have before
    watchlist_flagged_at: datetime | None = None
    decided_at: datetime | None = None
    # `kyc-rules`, or the principal who reviewed the customer
    decided_by: str | None = None
    review_note: str | None = None


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
    # set once the customer's personal data was erased (its fields then read `[erased]`)
    erased_at: datetime | None = None


class AccountCreate(Strict):
    """Open a ledger account for a customer in one currency."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"customer_id": EXAMPLE_CUSTOMER_ID, "currency": "EUR"}]},
    )

    customer_id: CustomerId
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
    """Credit incoming funds to an account (ops). Above the review threshold the deposit
    waits in `pending_review` for a second ops principal; `bank_reference` names the bank's
    incoming credit it books, which reconciliation matches against the bank statement."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "account_id": EXAMPLE_ACCOUNT_ID,
                    "amount": 100000,
                    "currency": "EUR",
                    "bank_reference": "BNK-20260114-000123",
                }
            ]
        },
    )

    account_id: AccountId
    amount: Amount
    currency: Currency
    bank_reference: (
        Annotated[
            str,
            StringConstraints(pattern=BANK_REFERENCE),
            Field(
                description=(
                    "The bank's reference of the incoming credit this deposit books (its "
                    "camt.053 `EndToEndId`); one live deposit per reference and currency."
                )
            ),
        ]
        | None
    ) = None


class DepositReviewCreate(Strict):
    """A decision on a deposit in `pending_review` (four-eyes: not by the principal who made
    it, nor with its key)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"decision": "approve", "note": "matches the bank's credit"}]
        },
    )

    decision: Literal["approve", "reject"]
    note: Text1000 = ""


class DepositReviewOut(BaseModel):
    """Who decided a deposit in review, and how."""

    decision: Literal["approve", "reject"]
    reviewed_by: str
    note: str | None
    reviewed_at: datetime


class DepositOut(BaseModel):
    """A deposit: `credited` (the ledger credit is made), `pending_review` (above the review
    threshold: nothing credited until approved) or `rejected` (nothing credited)."""

    id: str
    object: Literal["deposit"] = "deposit"
    account_id: str
    amount: int
    currency: str
    status: Literal["credited", "pending_review", "rejected"] = "credited"
    bank_reference: str | None = None
    # the principal who made it (the one who may not review it)
    created_by: str
    review: DepositReviewOut | None = None
    created_at: datetime


class DepositList(BaseModel):
    """A page of deposits, newest first."""

    object: Literal["list"] = "list"
    data: list[DepositOut]
    has_more: bool


class CreditorIn(Strict):
    """Who receives a payment: IBAN (+BIC) for SEPA, routing + account number for ACH."""

    name: Annotated[
        Name,
        Field(
            description=(
                "The creditor's name, kept and screened as given. The rail carries it in its"
                ' own character set: characters outside it are transliterated ("Zoë'
                ' Łukasz-Ñúñez" → "Zoe Lukasz-Nunez"), symbols dropped, and the result'
                " cut to the rail's field (ACH: printable ASCII, 22 characters; SEPA: the EPC"
                " Latin set `a-z A-Z 0-9 / - ? : ( ) . , ' +` and space, 70 characters). The"
                " payment shows that form as `creditor.rail_name`; a name with no letter or"
                " digit left is refused (422 `text_not_representable`)."
            )
        ),
    ]
    country: Country
    iban: Annotated[str, StringConstraints(min_length=5, max_length=42, pattern=NO_NUL)] | None = (
        None
    )
    bic: Annotated[str, StringConstraints(min_length=8, max_length=11, pattern=NO_NUL)] | None = (
        None
    )
    routing_number: Annotated[str, Field(pattern=r"^[0-9]{9}$")] | None = None
    account_number: Annotated[str, Field(pattern=r"^[0-9]{1,17}$")] | None = None


class PaymentTemplate(Strict):
    """A payment from a customer account: the body of `POST /v1/payments` without
    `execute_at` (a batch item, a payment schedule's template)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "account_id": EXAMPLE_ACCOUNT_ID,
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
            ],
            # each rail's maximum amount, as the server enforces it (`amount_exceeds_rail_limit`)
            "allOf": [
                {
                    "if": {"properties": {"rail": {"const": rail}}, "required": ["rail"]},
                    "then": {"properties": {"amount": {"maximum": maximum}}},
                }
                for rail, maximum in (("ach", NACHA_MAX_AMOUNT), ("sepa", SEPA_MAX_AMOUNT))
            ],
        },
    )

    account_id: AccountId
    amount: Annotated[
        Amount,
        Field(
            description=(
                "Minor units (cents). An integer: a number with a zero fraction such as"
                " `12500.0` is the same amount; a fraction, a string or a boolean is refused."
                " Each rail has its own maximum (422 `amount_exceeds_rail_limit` above it):"
                " ACH 9999999999 (NACHA's 10-digit amount field), SEPA 99999999999."
            )
        ),
    ]
    currency: Currency
    rail: Literal["sepa", "ach"]
    # exactly one of the two (422 `creditor_required` otherwise)
    creditor: CreditorIn | None = None
    counterparty_id: Annotated[
        CounterpartyId | None,
        Field(
            description=(
                "A saved counterparty of yours on this rail, instead of `creditor`: the payment"
                " takes its creditor from it. One that is not `verified` (or whose screening was"
                " not clear) sends the payment to review."
            )
        ),
    ] = None
    remittance_info: Annotated[
        Text140 | None,
        Field(
            description=(
                "Unstructured remittance information. SEPA carries it in the EPC Latin set,"
                " transliterated as the creditor's name is; longer than 140 characters once"
                " transliterated is refused (422 `remittance_info_too_long`). ACH files do"
                " not carry it."
            )
        ),
    ] = None
    metadata: Annotated[
        dict[MetadataKey, Text500],
        Field(max_length=20, json_schema_extra={"propertyNames": {"pattern": NO_NUL}}),
    ] = Field(default_factory=dict)


class PaymentCreate(PaymentTemplate):
    """Initiate a payment from a customer account, now or at `execute_at`."""

    execute_at: Annotated[
        AwareDatetime | None,
        Field(
            description=(
                "Execute the payment at this time (RFC 3339 with an offset), at most a year"
                " ahead: until then it is `scheduled` (cancelable; nothing is checked or held),"
                " and KYC, screening, limits and the available balance are checked at"
                " execution. In the past: 422 `execute_at_in_past`; too far ahead: 422"
                " `execute_at_too_far`."
            ),
            examples=["2027-01-15T09:00:00Z"],
        ),
    ] = None


class FailureOut(BaseModel):
    """Why a payment did not settle."""

    code: str
    message: str
    reason_code: str | None = None


class ActionOut(BaseModel):
    """Why a payment in `action_required` waits for ops (DESIGN §3)."""

    reason: Literal["rail_unreachable", "outcome_unknown", "ledger_out_of_sync"] = Field(
        description=(
            "`rail_unreachable`: the bank confirmed it has no record (or refused the message);"
            " a retry sends again, a cancel releases the hold. `outcome_unknown`: the bank's"
            " answer to a submission was lost and the bank cannot be asked either; the hold"
            " stays, nothing is sent again, a cancel waits for the bank's answer, and a retry"
            " asks again. `ledger_out_of_sync`: the bank paid and the ledger refused the post;"
            " a retry posts again, a cancel is refused."
        )
    )


class RecallOut(BaseModel):
    """The sender's recall of a settled payment (SEPA camt.056, ACH reversal) and the bank's
    answer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "rejected",
                    "reason": "CUST",
                    "note": "the customer changed their mind",
                    "requested_at": "2026-12-07T10:00:00Z",
                    "answered_at": "2026-12-08T09:12:00Z",
                    "answer_reason": "LEGL",
                }
            ]
        }
    )

    status: Literal["requested", "accepted", "rejected"]
    reason: Literal["DUPL", "TECH", "FRAD", "CUST"]
    note: str = ""
    requested_at: datetime
    answered_at: datetime | None = None
    # the bank's reason for a rejection (camt.029 code, ACH R-code; NOAS: no answer in time)
    answer_reason: str | None = None
    # SEPA: the bank accepted the recall but its funds (pacs.004) had not come by then; the
    # payment ends `returned` when they do
    funds_overdue_at: datetime | None = None


class StatusChangeOut(BaseModel):
    """One step of a payment's status history."""

    status: str
    at: datetime
    # why the payment went to review when it was not (only) a screening hit, e.g. a limit
    reasons: list[str] = []


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
    # what ops must know in action_required (DESIGN §3); null in every other status
    action: ActionOut | None = None
    status_history: list[StatusChangeOut]
    created_at: datetime
    # the saved counterparty the creditor was copied from (null: an inline creditor)
    counterparty_id: str | None = None
    # the sender's recall of the settled payment (null: never recalled)
    recall: RecallOut | None = None
    # `scheduled` until then (null: executed at once)
    execute_at: datetime | None = None
    # the payment schedule whose run made it (null: not from a schedule)
    schedule_id: str | None = None


class CancelCreate(Strict):
    """Why the payment is canceled."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "customer request"}]}
    )

    reason: Text500 = ""


class RecallCreate(Strict):
    """Ask for a settled payment's money back (SEPA rulebook reasons: DUPL duplicate, TECH
    technical problem, FRAD fraud, CUST the customer's request; ACH reverses DUPL and TECH
    only, within five banking days of settlement)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "DUPL", "note": "sent twice by mistake"}]},
    )

    reason: Literal["DUPL", "TECH", "FRAD", "CUST"]
    # 105: what the camt.056's AddtlInf carries
    note: Annotated[str, StringConstraints(max_length=105, pattern=NO_NUL)] = ""


class ReviewCreate(Strict):
    """A compliance decision (four-eyes: not by whoever initiated what is reviewed)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"decision": "approve", "note": "false positive: other birth date"}]
        },
    )

    decision: Literal["approve", "reject"]
    note: Text1000 = ""


class ErasureCreate(Strict):
    """An erasure request (GDPR Art. 17)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "DSR-2026-0042"}]}
    )

    reason: Annotated[
        Text500,
        Field(description="A reference for the request (a ticket id); never personal data."),
    ] = ""


class ErasureOut(BaseModel):
    """What an erasure did. Personal data is gone from the platform and from Temporal's
    histories (their data keys are shredded); what AML record-keeping requires is kept
    sealed until `legal_hold_until`, then shredded too."""

    object: Literal["customer_erasure"] = "customer_erasure"
    customer_id: str
    erased_at: datetime
    payments: int = Field(description="The customer's payments whose details were erased.")
    keys_shredded: int = Field(description="Temporal payload data keys destroyed.")
    legal_hold_until: datetime | None
    already_erased: bool = Field(description="True when an earlier request had erased it.")


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


class ItemErrorOut(BaseModel):
    """Why one item of a payment batch was refused: where it was and what was wrong."""

    index: int = Field(description="The item's position in the batch, from 0.")
    line: int | None = Field(
        default=None, description="Its line in a CSV or pain.001 body (1 is the first line)."
    )
    reference: str | None = None
    field: str = Field(description="The offending field (a CSV column for a CSV body).")
    code: str = Field(description="A problem code, as `POST /v1/payments` would answer it.")
    detail: str


class Problem(BaseModel):
    """An RFC 9457 problem document; `code` is stable, `param` names the offending field."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    param: str | None = None
    # a refused payment batch: every invalid item (`payment_batch_invalid`)
    errors: list[ItemErrorOut] | None = None


EventTypeFilter = Annotated[
    str, Field(pattern=r"^[a-z][a-z0-9_]*\.(?:[a-z][a-z0-9_]*|\*)$", max_length=100)
]


class WebhookEndpointCreate(Strict):
    """Register a URL to receive signed events."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"url": "https://partner.example/webhooks", "description": "ops"}]
        },
    )

    # http(s), no white space or control characters; the address checks run in the handler
    url: Annotated[str, StringConstraints(max_length=2048, pattern=WEBHOOK_URL)]
    description: Text200 | None = None
    # the event types to receive: `payment.settled`, or a family as `payment.*`; omitted:
    # every type, including ones added later
    event_types: Annotated[list[EventTypeFilter], Field(min_length=1, max_length=32)] | None = None


class WebhookEndpointOut(BaseModel):
    """A webhook endpoint; `secret` is shown only when it is created."""

    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    description: str | None
    enabled: bool
    # null: every event type
    event_types: list[str] | None = None
    secret: str | None = None
    # after a secret rotation: until then deliveries are signed with the previous secret too
    previous_secret_expires_at: datetime | None = None
    created_at: datetime


class WebhookEndpointList(BaseModel):
    """The tenant's webhook endpoints."""

    object: Literal["list"] = "list"
    data: list[WebhookEndpointOut]
    has_more: bool


class EventOut(BaseModel):
    """Something that happened, as delivered to webhooks."""

    id: str
    object: Literal["event"] = "event"
    type: str
    created_at: datetime
    data: dict[str, Any]


class EventList(BaseModel):
    """A page of events, newest first."""

    object: Literal["list"] = "list"
    data: list[EventOut]
    has_more: bool


class ScreeningCreate(Strict):
    """A name to screen against the sanctions lists."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Banco Nacional de Cuba", "type": "business"}]},
    )

    name: Name
    country: Country | None = None
    type: Literal["individual", "business"] | None = None


class ScreeningHitOut(BaseModel):
    """A potential match, explained."""

    list: str
    list_version: str
    entity_id: str
    matched_name: str
    score: float
    decision: Literal["review", "block"]
    explanation: str


class ScreeningOut(BaseModel):
    """The outcome: `clear`, `review` (a human decides) or `block` (a near-certain match)."""

    id: str
    object: Literal["screening"] = "screening"
    name: str
    decision: Literal["clear", "review", "block"]
    hits: list[ScreeningHitOut]
    list_versions: list[str]


class CounterpartyCreate(Strict):
    """Save a beneficiary: `iban` (+`bic`) for SEPA, or `routing_number` + `account_number`
    (+`account_type`) for ACH; never both. It is screened at once and verified before its
    first use: a Verification-of-Payee name check at the bank (SEPA) or a prenote (ACH)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "individual",
                    "name": "Erika Mustermann",
                    "country": "DE",
                    "iban": "DE89370400440532013000",
                }
            ]
        },
    )

    type: Literal["individual", "business"]
    name: Name
    country: Country
    iban: Annotated[str, StringConstraints(min_length=5, max_length=42, pattern=NO_NUL)] | None = (
        None
    )
    bic: Annotated[str, StringConstraints(min_length=8, max_length=11, pattern=NO_NUL)] | None = (
        None
    )
    routing_number: Annotated[str, Field(pattern=r"^[0-9]{9}$")] | None = None
    account_number: Annotated[str, Field(pattern=r"^[0-9]{1,17}$")] | None = None
    # ACH: the receiver's account type (the prenote's transaction code: 23 checking, 33 savings)
    account_type: Literal["checking", "savings"] | None = None


class VerificationOut(BaseModel):
    """Whether the counterparty is who the partner says: `pending` until the bank answers;
    `verified`, `close_match` (the bank holds `matched_name`), `no_match`, or `failed` (a
    returned prenote, with its R-code as `reason`). Payments to a counterparty that is not
    `verified` wait for review."""

    status: Literal["pending", "verified", "close_match", "no_match", "failed"]
    method: Literal["vop", "prenote"]
    matched_name: str | None = None
    reason: str | None = None
    verified_at: datetime | None = None


class CounterpartyScreeningOut(BaseModel):
    """The counterparty's sanctions screening (at creation, and after each list update)."""

    decision: Literal["clear", "review", "block"]
    hits: list[ScreeningHitOut]
    list_versions: list[str]
    screened_at: datetime


class CounterpartyOut(BaseModel):
    """A saved beneficiary."""

    id: str
    object: Literal["counterparty"] = "counterparty"
    rail: Literal["sepa", "ach"]
    type: str
    name: str
    country: str
    iban: str | None
    bic: str | None
    routing_number: str | None
    account_number: str | None
    account_type: str | None
    verification: VerificationOut
    screening: CounterpartyScreeningOut
    disabled: bool
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CounterpartyList(BaseModel):
    """A page of counterparties, newest first."""

    object: Literal["list"] = "list"
    data: list[CounterpartyOut]
    has_more: bool


EXAMPLE_BATCH_ITEM: dict[str, Any] = {
    "reference": "payroll-2026-12-0001",
    "account_id": EXAMPLE_ACCOUNT_ID,
    "amount": 250000,
    "currency": "EUR",
    "rail": "sepa",
    "creditor": {"name": "Erika Mustermann", "country": "DE", "iban": "DE89370400440532013000"},
    "remittance_info": "Salary December",
}


class PaymentBatchItemIn(PaymentTemplate):
    """One payment of a batch: the body of `POST /v1/payments` plus the item's reference."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_BATCH_ITEM]})

    reference: Annotated[
        str | None,
        StringConstraints(min_length=1, max_length=140, pattern=NO_NUL),
        Field(description="Your reference of the item (e.g. an invoice or employee number)."),
    ] = None


class PaymentBatchCreate(Strict):
    """A batch of payments (JSON form; `text/csv` and pain.001.001.09 XML are accepted too)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"reference": "payroll-2026-12", "items": [EXAMPLE_BATCH_ITEM]},
            ]
        },
    )

    items: Annotated[list[PaymentBatchItemIn], Field(min_length=1, max_length=10_000)]
    reference: Annotated[str, StringConstraints(min_length=1, max_length=140, pattern=NO_NUL)] | (
        None
    ) = None
    on_invalid_item: Annotated[
        Literal["reject", "skip"],
        Field(
            description=(
                "`reject` (default): one invalid item refuses the whole batch (422"
                " `payment_batch_invalid`, every invalid item listed in `errors`); `skip`:"
                " the valid items are accepted and the invalid ones listed in the answer's"
                " `skipped_items`."
            )
        ),
    ] = "reject"


class BatchReviewOut(BaseModel):
    """The four-eyes decision on a batch above the review threshold."""

    decision: str
    reviewed_by: str
    note: str | None
    reviewed_at: datetime


class PaymentBatchOut(BaseModel):
    """A payment batch: status, totals, its items' counts by status."""

    id: str
    object: Literal["payment_batch"] = "payment_batch"
    status: Literal["validating", "in_review", "processing", "completed", "canceled"]
    reference: str | None
    source: Literal["json", "csv", "pain.001"]
    item_count: int
    totals: dict[str, int] = Field(description="Sum of the items' amounts by currency.")
    counts: dict[str, int] = Field(
        description=(
            "Items by status: their payment's status once it exists, `pending` before,"
            " `canceled` when the batch was canceled before it started."
        )
    )
    needs_review: bool
    review: BatchReviewOut | None = None
    skipped_count: int = 0
    skipped_items: list[ItemErrorOut] = Field(
        default_factory=list,
        description="Invalid items left out with `on_invalid_item: skip` (creation answer only).",
    )
    created_at: datetime
    finished_at: datetime | None = None


class PaymentBatchItemOut(BaseModel):
    """One item of a batch and the payment made of it."""

    id: str = Field(description="The item's payment id (derived from the batch and the index).")
    object: Literal["payment_batch_item"] = "payment_batch_item"
    index: int
    line: int | None
    reference: str | None
    status: str
    amount: int
    currency: str
    rail: str


class PaymentBatchItemList(BaseModel):
    """A page of a batch's items, in order."""

    object: Literal["list"] = "list"
    data: list[PaymentBatchItemOut]
    has_more: bool


class CalendarRuleIn(Strict):
    """When a calendar schedule runs: a day of the month, or days of the week (neither:
    every day), at a local time in a time zone."""

    day_of_month: Annotated[
        int | None,
        Field(
            ge=1,
            le=28,
            description="1 to 28 (every month has it); null with `day_of_week`, or daily.",
        ),
    ] = None
    day_of_week: Annotated[
        list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None,
        Field(min_length=1, max_length=7),
    ] = None
    hour: Annotated[int, Field(ge=0, le=23)] = 9
    minute: Annotated[int, Field(ge=0, le=59)] = 0
    timezone: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            pattern=r"^[A-Za-z0-9_+/-]+$",
            description="An IANA time zone, e.g. `Europe/Berlin` (422 `schedule_rule_invalid`"
            " for an unknown one).",
        ),
    ] = "UTC"


class PaymentScheduleCreate(Strict):
    """A recurring payment: the payment each run makes, and when the runs are."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "payment": {
                        "account_id": EXAMPLE_ACCOUNT_ID,
                        "amount": 120000,
                        "currency": "EUR",
                        "rail": "sepa",
                        "creditor": {
                            "name": "Hausverwaltung Meier",
                            "country": "DE",
                            "iban": "DE89370400440532013000",
                        },
                        "remittance_info": "Rent",
                    },
                    "calendar": {"day_of_month": 1, "hour": 9, "timezone": "Europe/Berlin"},
                    "start_at": "2027-01-01T00:00:00Z",
                    "business_day_convention": "following",
                }
            ]
        },
    )

    payment: PaymentTemplate
    interval: Annotated[
        Annotated[int, Field(ge=1, le=31_622_400)]
        | Annotated[str, StringConstraints(max_length=40, pattern=r"^P[0-9WDTHMS]+$")]
        | None,
        Field(
            description=(
                "Seconds, or an ISO 8601 duration in weeks, days, hours, minutes and seconds"
                " (`PT1H`, `P1D`, `P2W`); at least an hour by default, at most 366 days"
                " (422 `schedule_rule_invalid` outside). Exactly one of"
                " `interval` and `calendar` (422 `schedule_rule_invalid`)."
            )
        ),
    ] = None
    calendar: CalendarRuleIn | None = None
    start_at: Annotated[
        AwareDatetime | None,
        Field(description="The first run at or after this time (default: now)."),
    ] = None
    end_at: Annotated[AwareDatetime | None, Field(description="No run after this time.")] = None
    business_day_convention: Annotated[
        Literal["following", "preceding", "none"],
        Field(
            description=(
                "A run whose date is not a business day of the rail (the Federal Reserve's for"
                " ACH, TARGET2's for SEPA) pays on the next one (`following`), the one before"
                " (`preceding`: made ahead by the run before, or for the first runs by the"
                " schedule's creation), or on its date (`none`)."
            )
        ),
    ] = "none"
    reference: Annotated[
        str | None, StringConstraints(min_length=1, max_length=140, pattern=NO_NUL)
    ] = None


class PaymentScheduleOut(BaseModel):
    """A payment schedule (`psch_…`), run by the Temporal Schedule of the same id."""

    id: str
    object: Literal["payment_schedule"] = "payment_schedule"
    status: Literal["active", "paused", "deleted"]
    payment: dict[str, Any] = Field(description="What each run's payment is made of.")
    interval_seconds: int | None
    calendar: dict[str, Any] | None
    start_at: datetime
    end_at: datetime | None
    business_day_convention: str
    reference: str | None
    created_at: datetime


class PaymentScheduleList(BaseModel):
    """A page of payment schedules, newest first."""

    object: Literal["list"] = "list"
    data: list[PaymentScheduleOut]
    has_more: bool
