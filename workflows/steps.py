"""The step catalogue: one typed declaration per activity, read by everything that names one.

A `Step[InputT, ResultT]` carries the activity's name, input and result types, the queue role
whose workers run it, whether it may run as a local activity, and its timeouts and retry
policy. Workflows call `await STEP.run(arg)` (mypy checks `arg` against the input type and
types the result); the worker registers implementations by the role declared here
(workers/activity_registry.py); the queue routing is `Step.queue`; the test fakes declare
themselves with `@implements(STEP)`. Nothing else spells an activity name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.models.ach import AchFileInput, AchFileResult
    from workflows.models.batch import (
        BatchCancelInput,
        BatchCancelResult,
        BatchPageResult,
        BatchProgress,
        BatchRef,
        BatchStatusInput,
    )
    from workflows.models.common import ReviewTokenCheck, ReviewTokenInput
    from workflows.models.counterparty import (
        CounterpartyRef,
        PayeeCheckResult,
        PrenoteResult,
        VerificationOutcome,
    )
    from workflows.models.ledger_maintenance import (
        ExpireInput,
        ExpireResult,
        ObserveResult,
        PartitionInput,
        PartitionResult,
        PurgeInput,
        PurgeResult,
    )
    from workflows.models.list_refresh import (
        ListRefreshInput,
        ListRefreshResult,
        RescreenPageInput,
        RescreenPageResult,
    )
    from workflows.models.onboarding import (
        CustomerRef,
        CustomerScreeningResult,
        KycEscalationInput,
        KycEvaluation,
        KycEvaluationInput,
        RecordKycInput,
    )
    from workflows.models.payment import (
        EscalationInput,
        KycCheckInput,
        KycCheckResult,
        LedgerInput,
        LedgerResult,
        LimitsInput,
        LimitsResult,
        OutcomeAnswer,
        OutcomeInput,
        PollInput,
        PollResult,
        RecordStatusInput,
        ScreeningInput,
        ScreeningResult,
        SubmitInput,
        SubmitResult,
    )
    from workflows.models.recall import (
        PaymentTold,
        RecallClaim,
        RecallConfirmation,
        RecallFundsOverdue,
        RecallOutcome,
        RecallRef,
        RecallSent,
    )
    from workflows.models.reconciliation import ReconcileRailInput, ReconcileResult
    from workflows.models.schedule import ScheduledPaymentInput, ScheduledPaymentResult
    from workflows.models.verification import (
        FullVerifyChunksInput,
        FullVerifyFinishInput,
        FullVerifyResult,
        FullVerifyState,
    )
    from workflows.models.webhooks import DeliveryInput, DeliveryResult
    from workflows.queues import Role, queue_for

InputT = TypeVar("InputT")
ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class Step(Generic[InputT, ResultT]):
    """One activity: what it takes, what it returns, where and how it runs."""

    name: str
    input_type: type[InputT]
    result_type: type[ResultT]
    role: Role
    start_to_close: timedelta
    retry: RetryPolicy
    # short, idempotent and safe to run in the workflow's own worker when the workflow allows
    local: bool = False
    schedule_to_close: timedelta | None = None
    # a long step reports progress this often at least, or its attempt is retried elsewhere
    heartbeat: timedelta | None = None

    def queue(self, base_queue: str) -> str:
        """The task queue of this step's role, next to the workflow's `base_queue`."""
        return queue_for(base_queue, self.role)

    async def run(
        self,
        arg: InputT,
        *,
        task_queue: str | None = None,
        retry: RetryPolicy | None = None,
        local: bool = False,
    ) -> ResultT:
        """Run the step from a workflow: on its role's queue unless `task_queue` says
        otherwise, or in this worker when `local` (only for steps declared local)."""
        if local:
            if not self.local:
                raise ValueError(f"{self.name} is not declared a local step")
            done: ResultT = await workflow.execute_local_activity(
                self.name,
                arg,
                start_to_close_timeout=self.start_to_close,
                retry_policy=retry or self.retry,
                result_type=self.result_type,
            )
            return done
        result: ResultT = await workflow.execute_activity(
            self.name,
            arg,
            task_queue=task_queue or self.queue(workflow.info().task_queue),
            start_to_close_timeout=self.start_to_close,
            schedule_to_close_timeout=self.schedule_to_close,
            heartbeat_timeout=self.heartbeat,
            retry_policy=retry or self.retry,
            result_type=self.result_type,
        )
        return result


Implementation = Callable[[InputT], Awaitable[ResultT]]


def implements(
    step: Step[InputT, ResultT],
) -> Callable[[Implementation[InputT, ResultT]], Implementation[InputT, ResultT]]:
    """Declare a function as the activity of `step` (mypy checks its signature against the
    step's types); for fakes and plain-function activities."""

    def register(fn: Implementation[InputT, ResultT]) -> Implementation[InputT, ResultT]:
        return activity.defn(name=step.name)(fn)

    return register


# Transient faults (database restart, network) are retried without limit: every step is
# idempotent, and giving up would strand money. Business outcomes come back as results.
RETRY_TRANSIENT = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
)
# a payment step is a short database or HTTP call; one lost with a crashed worker is retried
# on another worker after this long
PAYMENT_STEP_TIMEOUT = timedelta(seconds=10)
ONBOARDING_STEP_TIMEOUT = timedelta(seconds=30)

# --- payment ----------------------------------------------------------------------------

CHECK_DEBTOR_KYC = Step(
    "check_debtor_kyc",
    KycCheckInput,
    KycCheckResult,
    "compliance",
    PAYMENT_STEP_TIMEOUT,
    RETRY_TRANSIENT,
    local=True,
)
# screening extends the audit chain: an ordinary activity, every attempt visible to ops
SCREEN_PARTIES = Step(
    "screen_parties",
    ScreeningInput,
    ScreeningResult,
    "compliance",
    PAYMENT_STEP_TIMEOUT,
    RETRY_TRANSIENT,
)
CHECK_PAYMENT_LIMITS = Step(
    "check_payment_limits",
    LimitsInput,
    LimitsResult,
    "compliance",
    PAYMENT_STEP_TIMEOUT,
    RETRY_TRANSIENT,
    local=True,
)
HOLD_FUNDS = Step(
    "hold_funds", LedgerInput, LedgerResult, "ledger", PAYMENT_STEP_TIMEOUT, RETRY_TRANSIENT
)
POST_HOLD = Step(
    "post_hold", LedgerInput, LedgerResult, "ledger", PAYMENT_STEP_TIMEOUT, RETRY_TRANSIENT
)
VOID_HOLD = Step(
    "void_hold", LedgerInput, LedgerResult, "ledger", PAYMENT_STEP_TIMEOUT, RETRY_TRANSIENT
)
BLOCK_FUNDS = Step(
    "block_funds", LedgerInput, LedgerResult, "ledger", PAYMENT_STEP_TIMEOUT, RETRY_TRANSIENT
)
REVERSE_PAYMENT = Step(
    "reverse_payment", LedgerInput, LedgerResult, "ledger", PAYMENT_STEP_TIMEOUT, RETRY_TRANSIENT
)
# the payment bounds the attempts per submission (its own budget), then asks ops
SUBMIT_TO_RAIL = Step(
    "submit_to_rail", SubmitInput, SubmitResult, "rails", PAYMENT_STEP_TIMEOUT, RETRY_TRANSIENT
)
POLL_RAIL_STATUS = Step(
    "poll_rail_status", PollInput, PollResult, "rails", PAYMENT_STEP_TIMEOUT, RETRY_TRANSIENT
)
# a submission whose answer was lost: ask the bank (SEPA pacs.028, ACH file status). A few
# quick attempts; past them the answer is unknown and the workflow asks again later
ASK_RAIL_OUTCOME = Step(
    "ask_rail_outcome",
    OutcomeInput,
    OutcomeAnswer,
    "rails",
    PAYMENT_STEP_TIMEOUT,
    RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=5),
        maximum_attempts=3,
    ),
)
RECORD_PAYMENT_STATUS = Step(
    "record_payment_status",
    RecordStatusInput,
    type(None),
    "payments",
    PAYMENT_STEP_TIMEOUT,
    RETRY_TRANSIENT,
    local=True,
)
RECORD_REVIEW_ESCALATION = Step(
    "record_review_escalation",
    EscalationInput,
    type(None),
    "payments",
    PAYMENT_STEP_TIMEOUT,
    RETRY_TRANSIENT,
)

# a review's token is checked in the worker that runs the workflow (payments and customers)
VERIFY_REVIEW_TOKEN = Step(
    "verify_review_token",
    ReviewTokenInput,
    ReviewTokenCheck,
    "payments",
    PAYMENT_STEP_TIMEOUT,
    RETRY_TRANSIENT,
    local=True,
)

# a `recalled` signal is believed only once the database shows the accepted recall it claims
# (anyone who can signal the workflow could send one): a read, and an audit record when
# refused, in the workflow's own worker
CONFIRM_RECALL = Step(
    "confirm_recall",
    RecallClaim,
    RecallConfirmation,
    "payments",
    PAYMENT_STEP_TIMEOUT,
    RETRY_TRANSIENT,
    local=True,
)

# --- ACH batch, reconciliation, webhooks, ledger maintenance ----------------------------

# the file is retried for a while; past that, each payment goes to action_required (ops)
SUBMIT_ACH_FILE = Step(
    "submit_ach_file",
    AchFileInput,
    AchFileResult,
    "rails",
    timedelta(seconds=30),
    RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=8,
        non_retryable_error_types=["file_refused"],
    ),
)
# a bank that is down is retried, not skipped
RECONCILE_STATEMENT = Step(
    "reconcile_statement",
    ReconcileRailInput,
    ReconcileResult,
    "rails",
    timedelta(minutes=5),
    RetryPolicy(maximum_interval=timedelta(minutes=5)),
)
# retried with backoff until the endpoint answers 2xx or the delivery window closes; the
# workflow sets the first interval per delivery
DELIVER_WEBHOOK = Step(
    "deliver_webhook",
    DeliveryInput,
    DeliveryResult,
    "payments",
    timedelta(seconds=30),
    RetryPolicy(
        initial_interval=timedelta(seconds=5),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(hours=1),
    ),
    schedule_to_close=timedelta(days=3),
)
EXPIRE_PENDING_TRANSFERS = Step(
    "expire_pending_transfers",
    ExpireInput,
    ExpireResult,
    "ledger",
    timedelta(seconds=60),
    RetryPolicy(maximum_interval=timedelta(seconds=10)),
)
OBSERVE_PLATFORM = Step(
    "observe_platform",
    ExpireInput,
    ObserveResult,
    "ledger",
    timedelta(minutes=10),
    RetryPolicy(maximum_attempts=3),
)
PURGE_EXPIRED_RECORDS = Step(
    "purge_expired_records",
    PurgeInput,
    PurgeResult,
    "ledger",
    timedelta(minutes=30),
    RetryPolicy(maximum_interval=timedelta(minutes=1)),
)

# a few chunks of a full verification (ledger or audit chain), a heartbeat after each: a
# worker lost mid-way is noticed within the heartbeat timeout, and the retry resumes from the
# last chunk it reported. Transient faults are retried without limit (the state is durable).
VERIFY_FULL_CHUNKS = Step(
    "verify_full_chunks",
    FullVerifyChunksInput,
    FullVerifyState,
    "ledger",
    timedelta(minutes=10),
    RetryPolicy(maximum_interval=timedelta(seconds=30)),
    heartbeat=timedelta(seconds=60),
)
FINISH_FULL_VERIFICATION = Step(
    "finish_full_verification",
    FullVerifyFinishInput,
    FullVerifyResult,
    "ledger",
    timedelta(minutes=2),
    RetryPolicy(maximum_interval=timedelta(seconds=30)),
)
ENSURE_PARTITIONS = Step(
    "ensure_partitions",
    PartitionInput,
    PartitionResult,
    "ledger",
    timedelta(minutes=5),
    RetryPolicy(maximum_interval=timedelta(minutes=5)),
)

# --- payment batches ----------------------------------------------------------------------

# a page of a batch's items becomes payments (each a transaction and a workflow start); a
# worker lost mid-page is replaced after this long and the page re-runs (derived ids)
START_BATCH_PAGE = Step(
    "start_batch_page",
    BatchRef,
    BatchPageResult,
    "payments",
    timedelta(minutes=2),
    RETRY_TRANSIENT,
)
READ_BATCH_PROGRESS = Step(
    "read_batch_progress",
    BatchRef,
    BatchProgress,
    "payments",
    PAYMENT_STEP_TIMEOUT,
    RETRY_TRANSIENT,
)
RECORD_BATCH_STATUS = Step(
    "record_batch_status",
    BatchStatusInput,
    type(None),
    "payments",
    PAYMENT_STEP_TIMEOUT,
    RETRY_TRANSIENT,
)
CANCEL_BATCH_ITEMS = Step(
    "cancel_batch_items",
    BatchCancelInput,
    BatchCancelResult,
    "payments",
    timedelta(minutes=2),
    RETRY_TRANSIENT,
)

# --- payment schedules --------------------------------------------------------------------

# one run of a payment schedule makes its payment (a transaction and a workflow start, as a
# POST /v1/payments does); its id derives from the schedule and the nominal time. A
# `preceding` run may also make the payments of a closed weekend's runs (48 of an hourly
# schedule): a page's time, as a batch's
MAKE_SCHEDULED_PAYMENT = Step(
    "make_scheduled_payment",
    ScheduledPaymentInput,
    ScheduledPaymentResult,
    "payments",
    timedelta(minutes=2),
    RETRY_TRANSIENT,
)

# --- onboarding and watch lists ---------------------------------------------------------

SCREEN_CUSTOMER = Step(
    "screen_customer",
    CustomerRef,
    CustomerScreeningResult,
    "compliance",
    ONBOARDING_STEP_TIMEOUT,
    RETRY_TRANSIENT,
)
EVALUATE_CUSTOMER_KYC = Step(
    "evaluate_customer_kyc",
    KycEvaluationInput,
    KycEvaluation,
    "compliance",
    ONBOARDING_STEP_TIMEOUT,
    RETRY_TRANSIENT,
)
RECORD_KYC_DECISION = Step(
    "record_kyc_decision",
    RecordKycInput,
    type(None),
    "compliance",
    ONBOARDING_STEP_TIMEOUT,
    RETRY_TRANSIENT,
)
RECORD_KYC_ESCALATION = Step(
    "record_kyc_escalation",
    KycEscalationInput,
    type(None),
    "compliance",
    ONBOARDING_STEP_TIMEOUT,
    RETRY_TRANSIENT,
)
# loading a full OFAC edition takes seconds, a download longer; an unreachable source fails
# this run after a few attempts and the schedule tries again later
REFRESH_WATCH_LISTS = Step(
    "refresh_watch_lists",
    ListRefreshInput,
    ListRefreshResult,
    "compliance",
    timedelta(minutes=5),
    RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=5),
)
RESCREEN_CUSTOMERS_PAGE = Step(
    "rescreen_customers_page",
    RescreenPageInput,
    RescreenPageResult,
    "compliance",
    timedelta(minutes=2),
    RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
)

# --- counterparty verification ---------------------------------------------------------

# the bank's Verification-of-Payee service answers at once or says it cannot (retried a few
# times; past that the counterparty stays `pending`, and payments to it go to review)
CHECK_PAYEE = Step(
    "check_payee",
    CounterpartyRef,
    PayeeCheckResult,
    "rails",
    PAYMENT_STEP_TIMEOUT,
    RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=5,
    ),
)
# joins the open ACH window's file, as a payment's entry does
SEND_PRENOTE = Step(
    "send_prenote", CounterpartyRef, PrenoteResult, "rails", PAYMENT_STEP_TIMEOUT, RETRY_TRANSIENT
)
# a recall: the camt.056 to the bank (SEPA) or the reversal entry in a window's file (ACH)
SEND_RECALL = Step(
    "send_recall", RecallRef, RecallSent, "rails", PAYMENT_STEP_TIMEOUT, RETRY_TRANSIENT
)
RECORD_RECALL_OUTCOME = Step(
    "record_recall_outcome",
    RecallOutcome,
    type(None),
    "payments",
    PAYMENT_STEP_TIMEOUT,
    RETRY_TRANSIENT,
)
# the accepted recall told to the payment's workflow through the Temporal client: a workflow
# closed or not found is done, any other failure (Temporal unreachable, a timeout) is retried
TELL_PAYMENT_RECALLED = Step(
    "tell_payment_recalled",
    RecallOutcome,
    PaymentTold,
    "payments",
    PAYMENT_STEP_TIMEOUT,
    RETRY_TRANSIENT,
)
# an accepted SEPA recall whose funds are late: marked for ops (event, audit), still waited for
RECORD_RECALL_FUNDS_OVERDUE = Step(
    "record_recall_funds_overdue",
    RecallFundsOverdue,
    type(None),
    "payments",
    PAYMENT_STEP_TIMEOUT,
    RETRY_TRANSIENT,
)
RECORD_VERIFICATION = Step(
    "record_counterparty_verification",
    VerificationOutcome,
    type(None),
    "payments",
    PAYMENT_STEP_TIMEOUT,
    RETRY_TRANSIENT,
)

RESCREEN_COUNTERPARTIES_PAGE = Step(
    "rescreen_counterparties_page",
    RescreenPageInput,
    RescreenPageResult,
    "compliance",
    timedelta(minutes=2),
    RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)),
)

ALL: tuple[Step[Any, Any], ...] = (
    CHECK_DEBTOR_KYC,
    SCREEN_PARTIES,
    CHECK_PAYMENT_LIMITS,
    HOLD_FUNDS,
    POST_HOLD,
    VOID_HOLD,
    BLOCK_FUNDS,
    REVERSE_PAYMENT,
    SUBMIT_TO_RAIL,
    POLL_RAIL_STATUS,
    ASK_RAIL_OUTCOME,
    RECORD_PAYMENT_STATUS,
    RECORD_REVIEW_ESCALATION,
    VERIFY_REVIEW_TOKEN,
    CONFIRM_RECALL,
    SUBMIT_ACH_FILE,
    RECONCILE_STATEMENT,
    DELIVER_WEBHOOK,
    EXPIRE_PENDING_TRANSFERS,
    OBSERVE_PLATFORM,
    PURGE_EXPIRED_RECORDS,
    VERIFY_FULL_CHUNKS,
    FINISH_FULL_VERIFICATION,
    ENSURE_PARTITIONS,
    START_BATCH_PAGE,
    READ_BATCH_PROGRESS,
    RECORD_BATCH_STATUS,
    CANCEL_BATCH_ITEMS,
    MAKE_SCHEDULED_PAYMENT,
    SCREEN_CUSTOMER,
    EVALUATE_CUSTOMER_KYC,
    RECORD_KYC_DECISION,
    RECORD_KYC_ESCALATION,
    REFRESH_WATCH_LISTS,
    RESCREEN_CUSTOMERS_PAGE,
    CHECK_PAYEE,
    SEND_PRENOTE,
    RECORD_VERIFICATION,
    SEND_RECALL,
    RECORD_RECALL_OUTCOME,
    TELL_PAYMENT_RECALLED,
    RECORD_RECALL_FUNDS_OVERDUE,
    RESCREEN_COUNTERPARTIES_PAGE,
)
BY_NAME: dict[str, Step[Any, Any]] = {step.name: step for step in ALL}
# activity name → queue role (the benchmark's bare workflow routes its steps with this)
ACTIVITY_ROLE: dict[str, Role] = {step.name: step.role for step in ALL}
