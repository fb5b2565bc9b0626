"""Every `workflow.patched` id of every workflow, in one place (DESIGN §8; docs/versioning.md).

A patch id is written into a workflow's history the first time new code takes a changed
branch, and an old history without it replays the old branch. Each id is a `Patch` here:
when it was added, why, and when it may move on in its lifecycle (patched → deprecated →
deleted, docs/versioning.md). Workflows ask `is_patched(PATCH)`, never `workflow.patched`
with a bare string, and tests/replay proves each one has recorded histories on both sides.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date

from temporalio import workflow


class Stage(enum.StrEnum):
    """Where a patch is in its lifecycle (docs/versioning.md)."""

    # `is_patched` chooses between the old and the new branch
    PATCHED = "patched"
    # old branch deleted; `deprecate` still writes the marker so histories of either age replay
    DEPRECATED = "deprecated"


@dataclass(frozen=True)
class Patch:
    """One change to a workflow's commands, guarded for histories recorded before it."""

    id: str
    workflow: str
    added: date
    why: str
    # the condition under which the next lifecycle step is allowed
    retire_when: str
    stage: Stage = Stage.PATCHED


RECHECK_KYC_AFTER_REVIEW = Patch(
    id="recheck-kyc-after-review",
    workflow="Payment",
    added=date(2026, 11, 29),
    why="a review can take days and KYC can lapse meanwhile: check it again after approval",
    retire_when=(
        "only reachable without LIMITS_AND_BLOCKING (review before hold); retire together "
        "with it, once no payment started before 2026-11-29 06:55 UTC is open"
    ),
)
ADOPT_STATUS_BEFORE_PERSISTING = Patch(
    id="adopt-status-before-persisting",
    workflow="Payment",
    added=date(2026, 11, 29),
    why=(
        "a review sent as soon as the API shows in_review raced the workflow, which adopted "
        "the status only after persisting it"
    ),
    retire_when=(
        "deprecate once no open payment lacks the marker (started before 2026-11-29 "
        "07:03 UTC); delete a retention period after that"
    ),
)
LIMITS_AND_BLOCKING = Patch(
    id="limits-hold-before-review",
    workflow="Payment",
    added=date(2026, 11, 29),
    why=(
        "velocity limits, and the hold placed before a review so that a confirmed sanctions "
        "hit can block the money (OFAC)"
    ),
    retire_when=(
        "deprecate once no open payment lacks the marker (started before 2026-11-29 "
        "09:12 UTC); a payment in review may wait for days, so check, never assume"
    ),
)
LOCAL_STEPS = Patch(
    id="local-checks-and-status-records",
    workflow="Payment",
    added=date(2026, 11, 29),
    why=(
        "read-only checks and status records run as local activities in the workflow's "
        "worker: no activity task, no extra workflow task (docs/performance.md)"
    ),
    retire_when=(
        "deprecate once no open payment lacks the marker (started before 2026-11-29 "
        "11:32 UTC); it is decided in the first workflow task, so every newer payment has it"
    ),
)
SEPA_RETURNS = Patch(
    id="sepa-return-window",
    workflow="Payment",
    added=date(2026, 11, 29),
    why=(
        "a settled SEPA payment waits out the return window (pacs.004), as ACH always did; "
        "guards payments started with a window but settled by a worker older than the change"
    ),
    retire_when=(
        "deprecate once no open SEPA payment with a return window was settled without the "
        "marker (settled before 2026-11-29 12:12 UTC); delete a retention period after that"
    ),
)
ASK_BANK_BEFORE_RESEND = Patch(
    id="ask-bank-before-resend",
    workflow="Payment",
    added=date(2026, 12, 7),
    why=(
        "a submission whose answer was lost is never taken as not sent: the bank is asked "
        "before a resend, a cancel or a failure (action_reason outcome_unknown); rail events "
        "must name what this payment submitted; a return waits for settlement; a ledger that "
        "refuses the post after the bank paid waits for ops (ledger_out_of_sync); no cancel "
        "during a sanctions review"
    ),
    retire_when=(
        "decided once per payment (the first time it is asked), so every payment started "
        "after the deploy has it: deprecate once no open payment lacks the marker (started "
        "before 2026-12-07 12:30 UTC); delete a retention period after that"
    ),
)
ASK_BANK_FOR_FILE = Patch(
    id="ask-bank-for-file",
    workflow="AchBatch",
    added=date(2026, 12, 7),
    why=(
        "a file whose submission got no answer past the budget was declared NOTSENT without "
        "asking the bank, and its entries were put in a second file: now the bank is asked "
        "(its file status) and an unanswered question is UNKNOWN, never NOTSENT"
    ),
    retire_when=(
        "deprecate once no ACH batch workflow lacking the marker is open (a batch lives one "
        "window: a day after the deploy); delete with the next history generation"
    ),
)

REVIEW_TOKENS = Patch(
    id="review-tokens",
    workflow="Payment",
    added=date(2026, 12, 7),
    why=(
        "a review sent straight to Temporal with a made-up reviewer settled a payment held "
        "for a sanctions hit: now a review needs a token the API mints for the authenticated "
        "principal, checked by an activity, and four-eyes compares principal ids"
    ),
    retire_when=(
        "deprecate once no payment lacking the marker is in review (reviews wait for a "
        'person: check `PaymentStatus="in_review"` before); delete with the next history '
        "generation"
    ),
)
REVIEW_TOKENS_ONBOARDING = Patch(
    id="review-tokens-onboarding",
    workflow="Onboarding",
    added=date(2026, 12, 7),
    why="as review-tokens, for a customer's KYC review",
    retire_when=(
        "deprecate once no onboarding workflow lacking the marker is in review; delete with "
        "the next history generation"
    ),
)
RECALL_ENDS_PAYMENT = Patch(
    id="recall-ends-payment",
    workflow="Payment",
    added=date(2026, 12, 7),
    why=(
        "a payment still waiting out its return window when its recall was accepted kept "
        "saying `settled` (its result and its PaymentStatus search attribute) while the "
        "database said `returned`: the `recalled` signal now ends it `returned`, adopting "
        "what the recall recorded"
    ),
    retire_when=(
        "deprecate once no settled payment lacking the marker is still in its return window "
        "(ACH 2, SEPA 5 days after the deploy); delete with the next history generation"
    ),
)
RECALL_TELLS_PAYMENT = Patch(
    id="recall-tells-payment",
    workflow="Recall",
    added=date(2026, 12, 7),
    why="an accepted recall signals the payment's workflow (`recalled`) when it is still open",
    retire_when=(
        "deprecate once no recall lacking the marker is open (a recall lives until its "
        "rail's deadline, 21 days); delete with the next history generation"
    ),
)
RECALL_FUNDS_DEADLINE = Patch(
    id="recall-funds-deadline",
    workflow="Recall",
    added=date(2026, 12, 7),
    why=(
        "after the bank accepted a SEPA recall the workflow waited for its funds (pacs.004) "
        "with no deadline and nobody was told when they did not come: now, past "
        "`sepa.recall_funds_deadline_seconds`, the recall is marked funds_overdue_at (event, "
        "audit) and the workflow keeps waiting"
    ),
    retire_when=(
        "deprecate once no recall lacking the marker is open (21 days after the deploy); "
        "delete with the next history generation"
    ),
)
SCHEDULED_EXECUTION = Patch(
    id="scheduled-execution",
    workflow="Payment",
    added=date(2026, 12, 7),
    why=(
        "a payment with `execute_at` waits `scheduled` (cancelable, nothing held) until then "
        "and runs the ordinary path at that time: funds are checked at execution"
    ),
    retire_when=(
        "decided in the first workflow task, so every payment started after the deploy has "
        "it: deprecate once no open payment lacks the marker (started before 2026-12-07 "
        "21:00 UTC); delete with the next history generation"
    ),
)
RECALL_CONFIRMED = Patch(
    id="recall-confirmed",
    workflow="Payment",
    added=date(2026, 12, 8),
    why=(
        "anyone able to signal a payment in its return window could send `recalled`: it "
        "stopped waiting for returns though no money had moved, and a later real return hit "
        "a closed workflow. Now the claim is confirmed in the database first (an accepted "
        "recall of this payment and tenant, the payment `returned`); unconfirmed, it is "
        "audited (`recall.signal_refused`) and the payment keeps waiting"
    ),
    retire_when=(
        "asked when a `recalled` signal is heard, so every payment that hears one after the "
        "deploy has it: deprecate once no settled payment lacking the marker is in its return "
        "window (ACH 2, SEPA 5 days after the deploy); delete with the next history generation"
    ),
)
RECALL_TOLD_BY_ACTIVITY = Patch(
    id="recall-told-by-activity",
    workflow="Recall",
    added=date(2026, 12, 8),
    why=(
        "the `recalled` signal to the payment was dropped on any failure, a transient one "
        "included: now an activity sends it through the Temporal client, a closed or unknown "
        "payment workflow is done, anything else is retried"
    ),
    retire_when=(
        "deprecate once no recall lacking the marker is open (a recall lives until its "
        "rail's deadline, 21 days after the deploy); delete with the next history generation"
    ),
)

# `is_patched` asks this one first for the Payment patches it folds (`FOLDED`): see there.
PAYMENT_PATCHES_AS_ONE = Patch(
    id="payment-patches-as-one",
    workflow="Payment",
    added=date(2026, 12, 7),
    why=(
        "a settled payment asked five patches, each at first use: five markers and five "
        "TemporalChangeVersion upserts (history events, and a visibility write each), ~16 "
        "CPU-ms of Temporal's per payment (docs/performance.md, bare+patches); asked first, "
        "this one stands for every Payment patch before it: one marker, one upsert"
    ),
    retire_when=(
        "it goes with the patches it folds: once they are all deprecated, deprecate it too "
        "(every payment started after the deploy has its marker and asks none of them)"
    ),
)

ALL: tuple[Patch, ...] = (
    RECHECK_KYC_AFTER_REVIEW,
    ADOPT_STATUS_BEFORE_PERSISTING,
    LIMITS_AND_BLOCKING,
    LOCAL_STEPS,
    SEPA_RETURNS,
    ASK_BANK_BEFORE_RESEND,
    ASK_BANK_FOR_FILE,
    REVIEW_TOKENS,
    REVIEW_TOKENS_ONBOARDING,
    RECALL_ENDS_PAYMENT,
    RECALL_TELLS_PAYMENT,
    RECALL_FUNDS_DEADLINE,
    SCHEDULED_EXECUTION,
    PAYMENT_PATCHES_AS_ONE,
    RECALL_CONFIRMED,
    RECALL_TOLD_BY_ACTIVITY,
)
# The Payment patches PAYMENT_PATCHES_AS_ONE stands for: every one listed before it in ALL. A
# Payment patch added since is not in force for every payment that has its marker: append it
# to ALL after it (asked on its own), never before. (recall-confirmed came after it.)
FOLDED = frozenset(
    patch for patch in ALL[: ALL.index(PAYMENT_PATCHES_AS_ONE)] if patch.workflow == "Payment"
)


def is_patched(patch: Patch) -> bool:
    """True where the workflow takes the new branch (always, outside of an old history).

    A patch of `FOLDED` asks PAYMENT_PATCHES_AS_ONE first: a payment started since that
    patch records its one marker (at its first `is_patched`, in its first workflow task) and
    asks none of the folded ones, each of which would record a marker and a search-attribute
    upsert of its own. A history without that marker answers it False (the SDK keeps that
    answer for the run) and asks the folded patch itself, exactly as before.
    """
    if patch.stage is not Stage.PATCHED:
        raise ValueError(f"{patch.id} is {patch.stage}: its old branch must be gone")
    if patch in FOLDED and workflow.patched(PAYMENT_PATCHES_AS_ONE.id):
        return True
    return workflow.patched(patch.id)


def deprecate(patch: Patch) -> None:
    """Mark a patch whose old branch is deleted: histories with and without it replay."""
    if patch.stage is not Stage.DEPRECATED:
        raise ValueError(f"{patch.id} is {patch.stage}: set its stage to deprecated first")
    workflow.deprecate_patch(patch.id)
