"""Inputs and outputs of the payment workflow, its activities, signals, updates and queries.

Every type is a dataclass passed through Temporal's JSON converter; new fields must get
defaults so that old histories still replay (DESIGN §8 convention 1). Timestamps travel as
ISO 8601 strings.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class PaymentStatus(enum.StrEnum):
    """DESIGN §3: the API and the `PaymentStatus` search attribute use exactly these."""

    PROCESSING = "processing"
    IN_REVIEW = "in_review"
    SUBMITTED = "submitted"
    ACTION_REQUIRED = "action_required"
    SETTLED = "settled"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELED = "canceled"
    RETURNED = "returned"


TERMINAL_STATUSES = frozenset(
    {
        PaymentStatus.SETTLED,
        PaymentStatus.FAILED,
        PaymentStatus.REJECTED,
        PaymentStatus.CANCELED,
        PaymentStatus.RETURNED,
    }
)


class FailureCode(enum.StrEnum):
    """Stable codes explaining a payment that ended `failed`, `rejected` or `canceled`."""

    KYC_NOT_APPROVED = "kyc_not_approved"
    SANCTIONS_REJECTED = "sanctions_rejected"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    RAIL_REJECTED = "rail_rejected"
    RAIL_RETURNED = "rail_returned"
    LIMIT_EXCEEDED = "limit_exceeded"
    CANCELED = "canceled"


@dataclass
class Creditor:
    """Who receives the money, and where."""

    name: str
    country: str
    iban: str | None = None
    bic: str | None = None
    routing_number: str | None = None
    account_number: str | None = None


@dataclass
class PaymentInput:
    """Everything the payment workflow needs; the workflow id is `payment_id`."""

    payment_id: str
    tenant_id: str
    account_id: str
    customer_id: str
    amount: int
    currency: str
    rail: str
    creditor: Creditor
    initiated_by: str
    remittance_info: str | None = None
    # how long to wait for a rail callback before polling the rail ourselves
    rail_poll_interval_seconds: float = 30.0
    # attempts at the rail before the payment goes to action_required
    submit_max_attempts: int = 5
    # a review left waiting this long is escalated (flagged; never decided automatically)
    review_escalation_seconds: float = 86400.0
    # after ACH settlement, how long the receiving bank may still return the entry
    return_window_seconds: float = 2 * 86400.0
    # activities on per-role queues (True, as every payment before this field did, and the
    # `Settings` default) or on the payment's own queue (an all-in-one worker then takes
    # them without a hop)
    split_activity_queues: bool = True
    # after SEPA settlement, how long the creditor's bank may still return it (pacs.004);
    # 0, as for every payment before this field, ends the payment at settlement
    sepa_return_window_seconds: float = 0.0


@dataclass
class Failure:
    """Why a payment did not settle."""

    code: str
    message: str
    reason_code: str | None = None


@dataclass
class ScreeningHit:
    """One potential sanctions match, explained."""

    party: str
    list_name: str
    list_version: str
    entity_id: str
    matched_name: str
    score: float
    decision: str = ""  # review | block
    explanation: str = ""


@dataclass
class StatusChange:
    """One entry of the payment's status history."""

    seq: int
    status: str
    at: str


# --- activities -----------------------------------------------------------------------


@dataclass
class KycCheckInput:
    """Which debtor to check."""

    tenant_id: str
    customer_id: str


@dataclass
class KycCheckResult:
    """The debtor's KYC standing as of now."""

    approved: bool
    status: str
    debtor_name: str
    reasons: list[str] = field(default_factory=list)
    debtor_country: str = ""


@dataclass
class ScreeningInput:
    """The parties of a payment to screen."""

    payment_id: str
    creditor_name: str
    creditor_country: str
    debtor_name: str = ""
    debtor_country: str = ""


@dataclass
class ScreeningResult:
    """All potential matches (empty: clear) and the list version screened against."""

    list_version: str
    hits: list[ScreeningHit] = field(default_factory=list)


@dataclass
class LimitsInput:
    """A payment to check against its customer's velocity limits (daily amount and count)."""

    tenant_id: str
    customer_id: str
    payment_id: str
    amount: int
    currency: str


@dataclass
class LimitsResult:
    """Which limits the payment would exceed; empty when it is within all of them."""

    exceeded: list[str] = field(default_factory=list)
    risk_tier: str = ""


@dataclass
class EscalationInput:
    """A review that has waited past the escalation time."""

    payment_id: str
    waited_seconds: float
    reasons: list[str] = field(default_factory=list)


@dataclass
class LedgerInput:
    """A payment's money movement; transfer ids derive from `payment_id` and the step."""

    payment_id: str
    account_id: str
    amount: int
    currency: str
    rail: str


@dataclass
class LedgerResult:
    """Ledger result code (`ok`, `exists`, …) of the step's transfer."""

    transfer_id: str
    result: str


@dataclass
class SubmitInput:
    """A credit transfer to hand to the rail."""

    payment_id: str
    amount: int
    currency: str
    rail: str
    debtor_name: str
    creditor: Creditor
    remittance_info: str | None = None
    # fixed per payment, so a resubmitted message is byte-identical (the bank dedupes on it)
    created_at: str = ""
    # ACH: a file that never reached the bank; the payment must join a later one
    not_in_file: str = ""


@dataclass
class SubmitResult:
    """The rail's acknowledgement of our message."""

    message_id: str
    duplicate: bool = False
    # the rail's own reference for the payment inside the message (ACH: the trace number)
    reference: str = ""


@dataclass
class RailEvent:
    """A status from the rail: ACCP, ACSC or RJCT (pacs.002 `TxSts`, with a reason code), or
    RTRN when the receiving bank returns a settled payment (ACH R-code)."""

    message_id: str
    status: str
    reason_code: str | None = None


@dataclass
class PollInput:
    """Ask the rail for the status of a message we sent."""

    rail: str
    message_id: str
    payment_id: str
    reference: str = ""


@dataclass
class PollResult:
    """The rail's current answer; `event` is None while it has not decided."""

    event: RailEvent | None = None


@dataclass
class RecordStatusInput:
    """A status transition to persist for the API (idempotent on payment_id + seq)."""

    payment_id: str
    seq: int
    status: str
    at: str
    failure: Failure | None = None
    screening_hits: list[ScreeningHit] | None = None
    # why the payment waits for review (e.g. a velocity limit), shown in its history
    reasons: list[str] | None = None


@dataclass
class AchBatchInput:
    """One ACH origination window; its NACHA file's identity derives from it."""

    window_id: str
    submit_at: str
    file_created_at: str  # naive local time, minute precision (the file header's)
    file_id_modifier: str
    file_id: str


@dataclass
class AchEntryInput:
    """A payment joining a window's file (update `add_entry` of the ACH batch workflow)."""

    payment_id: str
    trace_number: str
    amount: int
    creditor_name: str
    routing_number: str
    account_number: str


@dataclass
class AchEntryResult:
    """Where the payment goes out: the file id and the entry's trace number."""

    file_id: str
    trace_number: str


@dataclass
class AchFileInput:
    """A window's file to submit: every entry collected before its cut-off."""

    batch: AchBatchInput
    entries: list[AchEntryInput] = field(default_factory=list)


@dataclass
class AchFileResult:
    """The bank's acknowledgement of the file."""

    file_id: str
    duplicate: bool = False
    status: str = "ACCP"  # ACCP (accepted) | RJCT (refused: invalid) | NOTSENT (bank unreachable)
    reason: str = ""


@dataclass
class ReconcileInput:
    """Reconcile one rail's statement of one day (empty date: yesterday, UTC)."""

    statement_date: str = ""
    rails: list[str] = field(default_factory=lambda: ["sepa", "ach"])


@dataclass
class ReconcileRailInput:
    """One rail's statement of one day."""

    statement_date: str
    rail: str


@dataclass
class ReconcileResult:
    """A stored reconciliation run."""

    run_id: str
    rail: str
    statement_date: str
    matched: int
    discrepancies: int


# --- signals, updates, queries ---------------------------------------------------------


@dataclass
class ReviewInput:
    """A compliance decision on a payment in review."""

    decision: str  # "approve" | "reject"
    reviewer: str
    note: str = ""


@dataclass
class ReviewResult:
    """The status the payment moved to after the decision."""

    status: str


@dataclass
class CancelInput:
    """Ask to cancel a payment (only before submission to the rail)."""

    requested_by: str = "ops"
    reason: str = ""


@dataclass
class PaymentView:
    """The `status` query's answer."""

    payment_id: str
    status: str
    failure: Failure | None = None
    screening_hits: list[ScreeningHit] = field(default_factory=list)
    history: list[StatusChange] = field(default_factory=list)


@dataclass
class ExpireInput:
    """A ledger maintenance pass; `verify_ledger` also recomputes the whole ledger."""

    verify_ledger: bool = False


@dataclass
class ExpireResult:
    """How many pending transfers the pass released."""

    expired: int = 0


@dataclass
class DeliveryInput:
    """One event to deliver to one endpoint."""

    event_id: str
    endpoint_id: str
    initial_retry_seconds: float = 5.0


@dataclass
class DeliveryResult:
    """How the delivery ended."""

    status: int = 0
    attempts: int = 0
    skipped: bool = False


@dataclass
class ObserveResult:
    """What a platform observation found (also exported as gauges)."""

    open_payments: int = 0
    ledger_ok: bool | None = None


# --- customer onboarding and watch lists (issue #4) ------------------------------------


class KycStatus(enum.StrEnum):
    """A customer's KYC status (API `kyc.status` and the `KycStatus` search attribute)."""

    PENDING = "pending"
    APPROVED = "approved"
    IN_REVIEW = "in_review"
    REJECTED = "rejected"


@dataclass
class OnboardingInput:
    """Start a customer's onboarding; the workflow id is `customer_id`.

    The customer's facts stay in the database (the activities read them by id), so the
    workflow history carries no more personal data than it needs.
    """

    customer_id: str
    tenant_id: str
    # the principal who created the customer: four-eyes, they cannot review it
    created_by: str
    # a review left waiting this long is escalated (flagged; never decided automatically)
    review_escalation_seconds: float = 86400.0


@dataclass
class CustomerRef:
    """Which customer an onboarding step works on."""

    customer_id: str
    tenant_id: str


@dataclass
class CustomerScreeningResult:
    """A customer's sanctions and PEP matches, and the list versions screened against."""

    list_versions: dict[str, str] = field(default_factory=dict)
    sanctions_hits: list[ScreeningHit] = field(default_factory=list)
    pep_hits: list[ScreeningHit] = field(default_factory=list)

    @property
    def hits(self) -> list[ScreeningHit]:
        """Every match, sanctions first (derived: not part of the payload)."""
        return self.sanctions_hits + self.pep_hits


@dataclass
class KycEvaluationInput:
    """Apply the KYC rules to a customer as of `as_of` (an ISO date, workflow time)."""

    customer_id: str
    tenant_id: str
    as_of: str
    screening: CustomerScreeningResult = field(default_factory=CustomerScreeningResult)


@dataclass
class KycEvaluation:
    """A KYC outcome: status, risk tier, re-verification date (ISO), and why."""

    status: str
    risk_tier: str
    review_date: str
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class RecordKycInput:
    """A KYC decision to persist: customer row and audit entry (idempotent per step)."""

    customer_id: str
    tenant_id: str
    # "rules" (the automatic decision) or "review" (a person's decision)
    step: str
    evaluation: KycEvaluation
    decided_at: str
    decided_by: str
    note: str = ""
    screening: CustomerScreeningResult | None = None


@dataclass
class KycEscalationInput:
    """A customer review that has waited past the escalation time."""

    customer_id: str
    tenant_id: str
    waited_seconds: float
    reasons: list[str] = field(default_factory=list)


@dataclass
class OnboardingView:
    """The onboarding workflow's `status` query answer."""

    customer_id: str
    status: str
    risk_tier: str = ""
    review_date: str = ""
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hits: list[ScreeningHit] = field(default_factory=list)
    list_versions: dict[str, str] = field(default_factory=dict)
    escalated: bool = False
    reviewed_by: str = ""


@dataclass
class ListRefreshInput:
    """Load the watch lists from their sources (empty: the worker's configured source)."""

    sanctions_source: str = ""
    pep_source: str = ""
    # customers per page of the re-screening a version change starts
    rescreen_page_size: int = 200


@dataclass
class ListRefreshResult:
    """The versions found, which lists changed, and the re-screening started for them."""

    versions: dict[str, str] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    rescreen_workflow_id: str = ""


@dataclass
class RescreenInput:
    """Re-screen every customer after a list update, a page at a time (continue-as-new
    carries the cursor and the running totals)."""

    list_versions: dict[str, str] = field(default_factory=dict)
    after_id: str = ""
    page_size: int = 200
    pages_per_run: int = 25
    screened: int = 0
    flagged: int = 0
    # fixed by the first run: idempotency keys of the audit entries of this re-screening
    run_key: str = ""


@dataclass
class RescreenPageInput:
    """One page of customers (ids after `after_id`) to screen again."""

    run_key: str
    after_id: str
    page_size: int


@dataclass
class RescreenPageResult:
    """What a page found; `done` when it was the last page."""

    last_id: str
    screened: int = 0
    flagged: int = 0
    list_versions: dict[str, str] = field(default_factory=dict)
    done: bool = False


@dataclass
class RescreenResult:
    """Totals of a finished re-screening."""

    screened: int = 0
    flagged: int = 0
    list_versions: dict[str, str] = field(default_factory=dict)
