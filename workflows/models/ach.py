"""The ACH batch workflow: one origination window, its entries and its NACHA file."""

# no `from __future__ import annotations`: the workflow sandbox resolves string annotations
# in sys.modules[cls.__module__], which only holds the modules a workflow imported itself
from dataclasses import dataclass, field


@dataclass
class AchBatchInput:
    """One ACH origination window; its NACHA file's identity derives from it."""

    window_id: str
    submit_at: str
    file_created_at: str  # naive local time, minute precision (the file header's)
    file_id_modifier: str
    file_id: str
    # attempts at sending the file (the step's own budget, 8, for batches started before)
    submit_max_attempts: int = 8


@dataclass
class AchEntryInput:
    """A payment joining a window's file (update `add_entry` of the ACH batch workflow)."""

    payment_id: str
    trace_number: str
    amount: int
    creditor_name: str
    routing_number: str
    account_number: str
    # 22 (checking credit) for payments; 23/33 for a counterparty's prenote (zero amount)
    transaction_code: int = 22


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
class RefusedEntry:
    """An entry left out of the window's file, alone: it could not be built or validated, or
    the bank named it when refusing the file. `reason` is the status reason code its payment
    is rejected with (RC01 routing number, AM02 amount, CH16 anything else; see
    rails/ach_file.py); `detail` says what was wrong."""

    payment_id: str
    reason: str
    detail: str = ""


@dataclass
class AchFileResult:
    """The bank's acknowledgement of the file."""

    file_id: str
    duplicate: bool = False
    # ACCP (accepted) | RJCT (refused: invalid) | NOTSENT (bank unreachable) | EMPTY (no entry
    # to send: none collected, or every one refused)
    status: str = "ACCP"
    reason: str = ""
    # entries left out of the file, each refused alone; the other entries went out
    refused: list[RefusedEntry] = field(default_factory=list)
