"""The recall workflow: the sender asks for a settled payment's money back (a SEPA camt.056
recall, an ACH reversal entry) and waits for the bank's answer."""

# no `from __future__ import annotations`: the workflow sandbox resolves string annotations
# in sys.modules[cls.__module__], which only holds the modules a workflow imported itself
from dataclasses import dataclass

from workflows.models.payment import Failure
from workflows.models.vocabulary import FailureCode

# the sequence number of a recall's status change: above every one a payment workflow takes,
# so the payment's own later records never overwrite it
RECALL_SEQ = 1_000_000


@dataclass
class RecallInput:
    """A recall of the settled payment `payment_id`; the workflow id derives from it
    (`recall_workflow_id`). The amount and account are the payment's, for the ledger."""

    payment_id: str
    rail: str
    reason: str
    account_id: str
    amount: int
    currency: str
    # SEPA: the rail's deadline for the bank's answer (camt.029)
    answer_deadline_seconds: float = 21 * 86400.0
    # ACH: how long the reversal entry may still be returned once its file was accepted
    reversal_window_seconds: float = 2 * 86400.0
    # SEPA: how long the funds of an accepted recall may take before ops are told
    funds_deadline_seconds: float = 5 * 86400.0


@dataclass
class RecallRef:
    """The recall of one payment, by the payment's id (activities read the rest)."""

    payment_id: str


@dataclass
class RecallSent:
    """Where the recall went: the camt.056's id (SEPA) or the reversal's file and trace
    number (ACH)."""

    message_id: str
    reference: str = ""


@dataclass
class RecallAnswer:
    """The bank's resolution of a SEPA recall (camt.029): accepted, or rejected with its
    reason code."""

    accepted: bool
    reason_code: str | None = None


@dataclass
class RecallFundsOverdue:
    """The bank accepted the recall of `payment_id` but its funds had not come by `since`."""

    payment_id: str
    since: str


@dataclass
class RecallOutcome:
    """How the recall ended: `accepted` (the funds came back: the payment is `returned`) or
    `rejected` (with `answer_reason`: the bank's code, an ACH R-code, NOAS when no answer came
    by the deadline)."""

    payment_id: str
    status: str
    reason: str
    answered_at: str
    answer_reason: str | None = None


@dataclass
class RecallClaim:
    """A `recalled` signal as the payment workflow heard it, to be confirmed in the database
    before the payment adopts it: `claim` is what the signal said (for the audit record of a
    refusal), `tenant_id` the payment's own."""

    payment_id: str
    tenant_id: str
    claim: RecallOutcome


@dataclass
class RecallConfirmation:
    """Whether the database holds an accepted recall of the payment, which its unit of work
    moved to `returned`; if so, the recall's own `reason` and `answered_at` (the payment
    adopts these, never the signal's), otherwise why not (`refusal`)."""

    confirmed: bool
    reason: str = ""
    answered_at: str = ""
    refusal: str = ""


@dataclass
class PaymentTold:
    """Whether the `recalled` signal reached the payment's workflow (False: it had closed, or
    never ran on this cluster; the API and the recall's workflow carry the outcome)."""

    delivered: bool


def recall_failure(reason: str) -> Failure:
    """Why a payment whose recall was accepted ended `returned` (the database's and the
    payment workflow's wording, one place)."""
    return Failure(
        FailureCode.RECALLED.value,
        f"recalled by the sender ({reason}); the funds came back",
        reason_code=reason,
    )
