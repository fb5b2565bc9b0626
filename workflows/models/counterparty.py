"""The counterparty verification workflow: a Verification-of-Payee check (SEPA) or a prenote
(ACH), and the outcome recorded on the saved counterparty."""

# no `from __future__ import annotations`: the workflow sandbox resolves string annotations
# in sys.modules[cls.__module__], which only holds the modules a workflow imported itself
from dataclasses import dataclass


@dataclass
class VerifyCounterpartyInput:
    """A counterparty to verify before its first use; the workflow id is its id."""

    counterparty_id: str
    rail: str
    # ACH: how long a prenote may still be returned once its file was accepted
    prenote_window_seconds: float = 3 * 86400.0
    # SEPA: a payee check the bank cannot answer is asked again this many times, after
    # `payee_check_retry_seconds`, doubling (0, as inputs from before had it: never)
    payee_check_retries: int = 0
    payee_check_retry_seconds: float = 3600.0


@dataclass
class CounterpartyRef:
    """A saved counterparty, by id (activities read the rest from the database)."""

    counterparty_id: str


@dataclass
class PayeeCheckResult:
    """The bank's Verification-of-Payee answer: `verified`, `close_match` (with the name the
    bank holds) or `no_match`."""

    status: str
    matched_name: str | None = None


@dataclass
class PrenoteResult:
    """Where the prenote went out: its ACH file and trace number."""

    file_id: str
    trace_number: str


@dataclass
class VerificationOutcome:
    """A verification's result, to record on the counterparty (with its event and audit)."""

    counterparty_id: str
    status: str
    method: str
    matched_name: str | None = None
    # a returned or refused prenote: the R-code or status reason
    reason: str | None = None
