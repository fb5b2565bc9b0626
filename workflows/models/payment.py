"""Inputs and outputs of the payment workflow, its activities, signals, updates and queries."""

# no `from __future__ import annotations`: the workflow sandbox resolves string annotations
# in sys.modules[cls.__module__], which only holds the modules a workflow imported itself
from dataclasses import dataclass, field

from workflows.models.common import ScreeningHit
from workflows.models.vocabulary import LedgerOutcome, Rail


@dataclass
class Creditor:
    """Who receives the money, and where."""

    name: str
    country: str
    iban: str | None = None
    bic: str | None = None
    routing_number: str | None = None
    account_number: str | None = None
    # the name as the rail carries it (rails/charset.py); `name` is the original, screened
    rail_name: str | None = None


@dataclass
class PaymentInput:
    """Everything the payment workflow needs; the workflow id is `payment_id`."""

    payment_id: str
    tenant_id: str
    account_id: str
    customer_id: str
    amount: int
    currency: str
    rail: Rail
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
    # `execute_at` (RFC 3339, UTC): the payment waits `scheduled` until then, and only then
    # are KYC, screening, limits and funds checked; None, as for every payment before this
    # field, starts at once
    execute_at: str | None = None


@dataclass
class Failure:
    """Why a payment did not settle."""

    code: str
    message: str
    reason_code: str | None = None


@dataclass
class StatusChange:
    """One entry of the payment's status history."""

    seq: int
    status: str
    at: str


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
    # the creditor's IBAN (its country must agree with the declared one) and the remittance
    # text (a listed entity named in it is a review reason); empty in older histories
    creditor_iban: str = ""
    remittance_info: str = ""


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
    rail: Rail


@dataclass
class LedgerResult:
    """Ledger result code (`ok`, `exists`, …: a `ledger.TransferResult` value) of the step's
    transfer; a plain string on the wire, as the ledger has many more codes than we act on."""

    transfer_id: str
    result: str

    @property
    def succeeded(self) -> bool:
        """The transfer exists as requested: new, or an identical retry (not in the payload)."""
        return self.result in (LedgerOutcome.OK, LedgerOutcome.EXISTS)


@dataclass
class SubmitInput:
    """A credit transfer to hand to the rail."""

    payment_id: str
    amount: int
    currency: str
    rail: Rail
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
    # ACH: the trace number of the entry the event is about (empty: SEPA, or older senders)
    reference: str = ""


@dataclass
class OutcomeInput:
    """Ask the bank what became of a submission whose answer was lost."""

    rail: Rail
    payment_id: str
    # SEPA: our message id; ACH: empty (the activity reads the payment's entry)
    message_id: str = ""


@dataclass
class OutcomeAnswer:
    """The bank's word on a submission: `received` (with where it stands) or `no_record`."""

    record: str
    message_id: str = ""
    reference: str = ""
    # the bank's current status of the payment in it, if it has decided
    event: RailEvent | None = None


@dataclass
class PollInput:
    """Ask the rail for the status of a message we sent."""

    rail: Rail
    message_id: str
    payment_id: str
    reference: str = ""


@dataclass
class PollResult:
    """The rail's current answer; `event` is None while it has not decided."""

    event: RailEvent | None = None


@dataclass
class OpsDecision:
    """Who decided what about a payment (`payment.review.approve|reject`, `payment.cancel`,
    `payment.retry`), carried to the transition it causes and audited with it."""

    actor: str
    action: str
    detail: dict[str, str] = field(default_factory=dict)


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
    # the person's decision (review, cancel, retry) that caused this transition: audited in
    # the transaction that records it
    decision: OpsDecision | None = None
    # why the payment waits for ops (`action_required` only; vocabulary.ActionReason)
    action_reason: str | None = None


@dataclass
class CancelInput:
    """Ask to cancel a payment (only before submission to the rail)."""

    requested_by: str = "ops"
    reason: str = ""


@dataclass
class RetryInput:
    """Ask to try the rail again; the Web UI may signal `retry` with no input at all."""

    requested_by: str = "ops"
    note: str = ""


@dataclass
class PaymentView:
    """The `status` query's answer."""

    payment_id: str
    status: str
    failure: Failure | None = None
    screening_hits: list[ScreeningHit] = field(default_factory=list)
    history: list[StatusChange] = field(default_factory=list)
    # why it waits in action_required (vocabulary.ActionReason), else None
    action_reason: str | None = None
