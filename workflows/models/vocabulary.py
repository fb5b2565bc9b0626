"""The payment platform's words, typed: statuses, rails, rail statuses, review decisions.

Each is a `StrEnum` (or a `Literal` where callers outside the workflows hand in plain
strings): a member is its string, so the JSON on the wire, the search attributes and the
database keep exactly the values they always had, and recorded histories replay.
"""

# no `from __future__ import annotations`: the workflow sandbox resolves string annotations
# in sys.modules[cls.__module__], which only holds the modules a workflow imported itself
import enum
from typing import Literal


class PaymentStatus(enum.StrEnum):
    """DESIGN §3: the API and the `PaymentStatus` search attribute use exactly these."""

    # `execute_at` in the future (DESIGN §10): nothing checked, nothing held until then
    SCHEDULED = "scheduled"
    PROCESSING = "processing"
    IN_REVIEW = "in_review"
    SUBMITTED = "submitted"
    ACTION_REQUIRED = "action_required"
    SETTLED = "settled"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELED = "canceled"
    RETURNED = "returned"


# the one home of the payment status sets (API, activities, workflows, tools)
TERMINAL_STATUSES = frozenset(
    {
        PaymentStatus.SETTLED,
        PaymentStatus.FAILED,
        PaymentStatus.REJECTED,
        PaymentStatus.CANCELED,
        PaymentStatus.RETURNED,
    }
)
# not terminal: the workflow still acts on the payment (stuck-payment alerts count these)
OPEN_STATUSES = frozenset(set(PaymentStatus) - TERMINAL_STATUSES)
# a cancel is honoured only before the rail has the payment (and never once it was submitted)
CANCELABLE_STATUSES = frozenset(
    {
        PaymentStatus.SCHEDULED,
        PaymentStatus.PROCESSING,
        PaymentStatus.IN_REVIEW,
        PaymentStatus.ACTION_REQUIRED,
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
    # the sender recalled a settled payment and the bank sent the funds back (issue #18)
    RECALLED = "recalled"


# the API's `rail` (DESIGN §6); a Literal because the API hands it in as one
Rail = Literal["sepa", "ach"]


class RailStatus(enum.StrEnum):
    """A rail's word on a message (pacs.002 `TxSts`, or our own for ACH files and returns)."""

    ACCEPTED = "ACCP"  # the bank took the message (or the ACH file); no decision yet
    SETTLED = "ACSC"
    REJECTED = "RJCT"
    RETURNED = "RTRN"  # the receiving bank sent a settled payment back (ACH R-code, pacs.004)
    NOT_SENT = "NOTSENT"  # an ACH file the bank never received (unreachable past the budget)
    EMPTY = "EMPTY"  # an ACH window closed with no entry: no file was sent
    # an ACH file whose submission got no answer and whose fate the bank could not be asked
    # about: it may be at the bank, so nothing in it may be sent again or released
    UNKNOWN = "UNKNOWN"


FINAL_RAIL_STATUSES = frozenset({RailStatus.SETTLED, RailStatus.REJECTED})


class ActionReason(enum.StrEnum):
    """Why a payment waits in `action_required` (API `action_reason`, search attribute
    `ActionReason`): what ops must know before they retry or cancel."""

    # the bank's answer to a submission was lost (timeout, reset, 5xx after it may have
    # stored it) and asking the bank gave no answer either: the money may leave, so the hold
    # stays, nothing is sent again and a cancel waits until the bank answers
    OUTCOME_UNKNOWN = "outcome_unknown"
    # the bank confirmed it has no record (or refused the message): a retry sends it again
    RAIL_UNREACHABLE = "rail_unreachable"
    # the bank paid but the ledger refused to post the hold: a retry posts again; no cancel
    LEDGER_OUT_OF_SYNC = "ledger_out_of_sync"


class BankRecord(enum.StrEnum):
    """What the bank says it knows of a submission, when asked (pacs.028, ACH file status)."""

    RECEIVED = "received"
    NO_RECORD = "no_record"
    # not a bank answer: asking failed too (kept in the workflow, never on the wire)
    UNKNOWN = "unknown"


class LedgerOutcome(enum.StrEnum):
    """The ledger results a workflow acts on (`ledger.TransferResult` has every code)."""

    OK = "ok"
    EXISTS = "exists"  # an identical transfer with this id: a retried step
    EXCEEDS_CREDITS = "exceeds_credits"  # the available balance is too low


class ReviewDecision(enum.StrEnum):
    """A compliance reviewer's decision on a payment or customer in review."""

    APPROVE = "approve"
    REJECT = "reject"


class KycStatus(enum.StrEnum):
    """A customer's KYC status (API `kyc.status` and the `KycStatus` search attribute)."""

    PENDING = "pending"
    APPROVED = "approved"
    IN_REVIEW = "in_review"
    REJECTED = "rejected"
