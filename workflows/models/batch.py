"""Inputs and outputs of the payment batch workflow and its activities (issue #19)."""

# no `from __future__ import annotations`: the workflow sandbox resolves string annotations
# in sys.modules[cls.__module__] (see workflows/models/common.py)
from dataclasses import dataclass, field
from enum import StrEnum


class BatchStatus(StrEnum):
    """A batch's status (DESIGN §10); the API and `payment_batch.<status>` events use these."""

    VALIDATING = "validating"
    IN_REVIEW = "in_review"
    PROCESSING = "processing"
    COMPLETED = "completed"
    CANCELED = "canceled"


# the sequence number of each status a batch can record after its creation (seq 0): a
# re-run activity writes nothing twice, and a status never moves back
APPROVED_SEQ = 1
FINISHED_SEQ = 2


@dataclass
class BatchInput:
    """Start (or continue as new) the workflow of a batch; id = the batch id."""

    batch_id: str
    tenant_id: str
    initiated_by: str
    needs_review: bool
    progress_interval_seconds: float = 2.0
    # iterations (a page started, or a progress read and its wait: about ten events each)
    # per run before continuing as new: far below Temporal's 51,200-event limit
    run_length: int = 400
    # carried over continue-as-new
    approved: bool = False
    all_started: bool = False
    cancel_requested_by: str = ""
    cancel_reason: str = ""
    run: int = 0


@dataclass
class BatchRef:
    """A batch, by id."""

    batch_id: str


@dataclass
class BatchPageResult:
    """What one page of item starts did."""

    started: int
    more: bool


@dataclass
class BatchProgress:
    """Where a batch's items stand: counts by status (an item's payment status, or
    `pending` / `canceled` before its payment exists) and how many are not finished."""

    counts: dict[str, int] = field(default_factory=dict)
    open: int = 0


@dataclass
class BatchStatusInput:
    """Record a batch's status (idempotent on (batch, seq)) with its event and, for a person's
    decision, its audit record."""

    batch_id: str
    status: str
    seq: int
    at: str
    actor: str = ""
    decision: str = ""
    note: str = ""
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class BatchCancelInput:
    """Cancel what of a batch has not started, and ask its payments not yet submitted to stop."""

    batch_id: str
    requested_by: str
    reason: str = ""


@dataclass
class BatchCancelResult:
    """Items canceled before their payment existed, and payments asked to cancel."""

    items_canceled: int = 0
    payments_canceled: int = 0


@dataclass
class BatchResult:
    """How a batch ended."""

    batch_id: str
    status: str
    counts: dict[str, int] = field(default_factory=dict)
