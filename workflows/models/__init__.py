"""Inputs and outputs of every workflow, its activities, signals, updates and queries.

One module per workflow (payment, onboarding, ach, ...), the shared vocabulary (statuses,
rails, decisions) and the types two workflows share; everything is re-exported here, so
`from workflows.models import X` names any of them.

Every type is a dataclass passed through Temporal's JSON converter; new fields must get
defaults so that old histories still replay (DESIGN §8 convention 1; docs/versioning.md).
Timestamps travel as ISO 8601 strings; enums are `StrEnum`s, so the JSON is their value.
"""

from __future__ import annotations

from workflows.models.ach import (
    AchBatchInput,
    AchEntryInput,
    AchEntryResult,
    AchFileInput,
    AchFileResult,
    RefusedEntry,
)
from workflows.models.common import (
    ReviewInput,
    ReviewResult,
    ScreeningHit,
)
from workflows.models.ledger_maintenance import (
    ExpireInput,
    ExpireResult,
    ObserveResult,
    PurgeInput,
    PurgeResult,
)
from workflows.models.list_refresh import (
    ListRefreshInput,
    ListRefreshResult,
    RescreenInput,
    RescreenPageInput,
    RescreenPageResult,
    RescreenResult,
)
from workflows.models.onboarding import (
    CustomerRef,
    CustomerScreeningResult,
    KycEscalationInput,
    KycEvaluation,
    KycEvaluationInput,
    OnboardingInput,
    OnboardingView,
    RecordKycInput,
)
from workflows.models.payment import (
    CancelInput,
    Creditor,
    EscalationInput,
    Failure,
    KycCheckInput,
    KycCheckResult,
    LedgerInput,
    LedgerResult,
    LimitsInput,
    LimitsResult,
    OpsDecision,
    PaymentInput,
    PaymentView,
    PollInput,
    PollResult,
    RailEvent,
    RecordStatusInput,
    RetryInput,
    ScreeningInput,
    ScreeningResult,
    StatusChange,
    SubmitInput,
    SubmitResult,
)
from workflows.models.reconciliation import (
    ReconcileInput,
    ReconcileRailInput,
    ReconcileResult,
)
from workflows.models.vocabulary import (
    CANCELABLE_STATUSES,
    FINAL_RAIL_STATUSES,
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    FailureCode,
    KycStatus,
    LedgerOutcome,
    PaymentStatus,
    Rail,
    RailStatus,
    ReviewDecision,
)
from workflows.models.webhooks import (
    DeliveryInput,
    DeliveryResult,
)

__all__ = [
    "CANCELABLE_STATUSES",
    "FINAL_RAIL_STATUSES",
    "OPEN_STATUSES",
    "TERMINAL_STATUSES",
    "AchBatchInput",
    "AchEntryInput",
    "AchEntryResult",
    "AchFileInput",
    "AchFileResult",
    "CancelInput",
    "Creditor",
    "CustomerRef",
    "CustomerScreeningResult",
    "DeliveryInput",
    "DeliveryResult",
    "EscalationInput",
    "ExpireInput",
    "ExpireResult",
    "Failure",
    "FailureCode",
    "KycCheckInput",
    "KycCheckResult",
    "KycEscalationInput",
    "KycEvaluation",
    "KycEvaluationInput",
    "KycStatus",
    "LedgerInput",
    "LedgerOutcome",
    "LedgerResult",
    "LimitsInput",
    "LimitsResult",
    "ListRefreshInput",
    "ListRefreshResult",
    "ObserveResult",
    "OnboardingInput",
    "OnboardingView",
    "OpsDecision",
    "PaymentInput",
    "PaymentStatus",
    "PaymentView",
    "PollInput",
    "PollResult",
    "PurgeInput",
    "PurgeResult",
    "Rail",
    "RailEvent",
    "RailStatus",
    "ReconcileInput",
    "ReconcileRailInput",
    "ReconcileResult",
    "RecordKycInput",
    "RecordStatusInput",
    "RefusedEntry",
    "RescreenInput",
    "RescreenPageInput",
    "RescreenPageResult",
    "RescreenResult",
    "RetryInput",
    "ReviewDecision",
    "ReviewInput",
    "ReviewResult",
    "ScreeningHit",
    "ScreeningInput",
    "ScreeningResult",
    "StatusChange",
    "SubmitInput",
    "SubmitResult",
]
