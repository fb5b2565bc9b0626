"""The onboarding workflow on Temporal's time-skipping test server.

The activities are same-name fakes, except that KYC evaluation applies the real rules
(`compliance.kyc.evaluate`) to facts the test supplies, so each path is the one a real
customer with those facts takes: which status it ends in, what is recorded, who decided.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.onboarding import list_matches
from compliance.kyc import CustomerFacts, evaluate, review_date_for
from ops.devstack import binary
from tests.workflows.recording import HistoryRecorder
from tests.workflows.support import signed, verify_review_token
from workflows import steps
from workflows.models import (
    CustomerRef,
    CustomerScreeningResult,
    KycEscalationInput,
    KycEvaluation,
    KycEvaluationInput,
    OnboardingInput,
    OnboardingView,
    RecordKycInput,
    ReviewInput,
    ScreeningHit,
)
from workflows.onboarding import OnboardingWorkflow
from workflows.queues import ROLES, queue_for
from workflows.search_attributes import (
    KYC_STATUS,
    REVIEW_ESCALATED,
    TENANT_ID,
    register_search_attributes,
)
from workflows.steps import implements

QUEUE = "onboarding-test"
ADDRESS = {"line1": "1 Main St", "city": "London", "postal_code": "N1", "country": "GB"}
ADULT = CustomerFacts("individual", "Ada Lovelace", "GB", ADDRESS)
PEP_HIT = ScreeningHit(
    "customer", "PEP", "pep-sample:1", "PEP-FICT-007", "Lucinda Pemberwick", 1.0, "block"
)


@dataclass
class FakeCompliance:
    """Fake activities: a scripted screening, the real KYC rules, and logs of what was kept."""

    facts: CustomerFacts = ADULT
    # the customer's age on the decision date: the test server's clock runs years ahead
    # (it skips to far timers while a test waits on a result), so birth dates are relative
    age: int = 40
    screening: CustomerScreeningResult = field(
        default_factory=lambda: CustomerScreeningResult({"OFAC-SDN": "ofac:1", "PEP": "pep:1"})
    )
    decisions: list[tuple[str, str, str]] = field(default_factory=list)
    escalations: list[float] = field(default_factory=list)
    as_of: list[str] = field(default_factory=list)

    def activities(self) -> list[Callable[..., Any]]:
        @implements(steps.SCREEN_CUSTOMER)
        async def screen(_: CustomerRef) -> CustomerScreeningResult:
            return self.screening

        @implements(steps.EVALUATE_CUSTOMER_KYC)
        async def evaluate_kyc(request: KycEvaluationInput) -> KycEvaluation:
            self.as_of.append(request.as_of)
            as_of = date.fromisoformat(request.as_of)
            born = as_of.replace(year=as_of.year - self.age, day=1)
            facts = dataclasses.replace(self.facts, date_of_birth=born)
            decision = evaluate(facts, as_of, list_matches(request.screening))
            return KycEvaluation(
                decision.status,
                decision.risk_tier,
                decision.review_date.isoformat(),
                decision.reasons,
                decision.notes,
            )

        @implements(steps.RECORD_KYC_DECISION)
        async def record(request: RecordKycInput) -> None:
            self.decisions.append((request.step, request.evaluation.status, request.decided_by))

        @implements(steps.RECORD_KYC_ESCALATION)
        async def escalate(request: KycEscalationInput) -> None:
            self.escalations.append(request.waited_seconds)

        return [screen, evaluate_kyc, record, escalate, verify_review_token]


# recorded for tests/replay with RECORD_HISTORIES=1 (make record-histories)
RECORDER = HistoryRecorder("onboarding")
record_histories = RECORDER.fixture()


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    await register_search_attributes(environment.client)
    yield environment
    await environment.shutdown()


@contextlib.asynccontextmanager
async def worker_for(env: WorkflowEnvironment, fake: FakeCompliance) -> AsyncIterator[None]:
    """Workers for the base queue (workflows) and every role queue (activities)."""
    async with contextlib.AsyncExitStack() as stack:
        for role in ROLES:
            worker = Worker(
                env.client,
                task_queue=queue_for(QUEUE, role),
                workflows=[OnboardingWorkflow] if role == "payments" else [],
                activities=fake.activities(),
            )
            await stack.enter_async_context(worker)
        yield


async def start(
    env: WorkflowEnvironment, **overrides: Any
) -> WorkflowHandle[OnboardingWorkflow, OnboardingView]:
    customer_id = f"cus_{uuid.uuid4().hex[:20]}"
    values: dict[str, Any] = dict(
        customer_id=customer_id, tenant_id="ten_test", created_by="partner-app"
    )
    values.update(overrides)
    handle = await env.client.start_workflow(
        OnboardingWorkflow.run,
        OnboardingInput(**values),
        id=customer_id,
        task_queue=QUEUE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(TENANT_ID, "ten_test"),
                SearchAttributePair(KYC_STATUS, "pending"),
            ]
        ),
    )
    return RECORDER.track(handle)


async def wait_status(
    handle: WorkflowHandle[OnboardingWorkflow, OnboardingView], status: str
) -> OnboardingView:
    for _ in range(200):
        view = await handle.query(OnboardingWorkflow.status)
        if view.status == status:
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"customer never reached {status}")


async def test_adult_in_a_low_risk_country_is_approved_and_the_workflow_ends(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeCompliance()
    async with worker_for(env, fake):
        handle = await start(env)
        decided = await handle.execute_update(OnboardingWorkflow.decided)
        view = await handle.result()
    assert decided.status == view.status == "approved"
    assert view.risk_tier == "low"
    assert view.review_date == review_date_for("low", date.fromisoformat(fake.as_of[0])).isoformat()
    assert view.list_versions == {"OFAC-SDN": "ofac:1", "PEP": "pep:1"}
    assert fake.decisions == [("rules", "approved", "kyc-rules")]
    description = await handle.describe()
    assert description.typed_search_attributes.get(KYC_STATUS) == "approved"


@pytest.mark.parametrize(
    ("facts", "age", "reason"),
    [
        (
            CustomerFacts("individual", "Young Person", "GB", ADDRESS),
            17,
            "individual is younger than 18",
        ),
        (
            CustomerFacts(
                "individual",
                "Erika Mustermann",
                "DE",
                {**ADDRESS, "country": "DE"},
                national_id="36574261808",
            ),
            40,
            "national_id is not a valid DE IdNr: The number's checksum or check digit is invalid.",
        ),
        (
            CustomerFacts("individual", "Kim Chol", "KP", ADDRESS),
            40,
            "country KP is prohibited (comprehensive sanctions (OFAC NKSR); FATF call for action)",
        ),
    ],
    ids=["minor", "invalid-national-id", "prohibited-country"],
)
async def test_rule_failures_reject_without_review(
    env: WorkflowEnvironment, facts: CustomerFacts, age: int, reason: str
) -> None:
    fake = FakeCompliance(facts=facts, age=age)
    async with worker_for(env, fake):
        handle = await start(env)
        view = await handle.result()
    assert view.status == "rejected"
    assert reason in view.reasons
    assert fake.decisions == [("rules", "rejected", "kyc-rules")]
    assert (await handle.describe()).typed_search_attributes.get(KYC_STATUS) == "rejected"


async def test_pep_waits_for_a_four_eyes_review_then_approval(env: WorkflowEnvironment) -> None:
    fake = FakeCompliance(
        facts=CustomerFacts("individual", "Lucinda Pemberwick", "GB", ADDRESS),
        screening=CustomerScreeningResult({"PEP": "pep:1"}, pep_hits=[PEP_HIT]),
    )
    async with worker_for(env, fake):
        handle = await start(env)
        decided = await handle.execute_update(OnboardingWorkflow.decided)
        assert (decided.status, decided.risk_tier) == ("in_review", "high")
        assert decided.hits == [PEP_HIT]
        assert (await handle.describe()).typed_search_attributes.get(KYC_STATUS) == "in_review"
        # four-eyes: whoever created the customer cannot review it
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                OnboardingWorkflow.review, signed(handle.id, "approve", "partner-app")
            )
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.type == "four_eyes_violation"
        with pytest.raises(WorkflowUpdateFailedError) as invalid:
            await handle.execute_update(
                OnboardingWorkflow.review, signed(handle.id, "maybe", "bob")
            )
        assert isinstance(invalid.value.cause, ApplicationError)
        assert invalid.value.cause.type == "invalid_decision"
        # straight to Temporal, without the API's token: refused, still in review
        with pytest.raises(WorkflowUpdateFailedError) as forged:
            await handle.execute_update(
                OnboardingWorkflow.review, ReviewInput("approve", "mallory")
            )
        assert isinstance(forged.value.cause, ApplicationError)
        assert forged.value.cause.type == "review_token_invalid"
        assert (await handle.query(OnboardingWorkflow.status)).status == "in_review"
        result = await handle.execute_update(
            OnboardingWorkflow.review,
            signed(handle.id, "approve", "ops-olga", "known PEP, EDD done"),
        )
        assert result.status == "approved"
        view = await handle.result()
    assert (view.status, view.risk_tier, view.reviewed_by) == ("approved", "high", "ops-olga")
    assert view.reasons[-1] == "approved on review by ops-olga"
    assert fake.decisions == [
        ("rules", "in_review", "kyc-rules"),
        ("review", "approved", "ops-olga"),
    ]
    assert fake.escalations == []
    assert (await handle.describe()).typed_search_attributes.get(KYC_STATUS) == "approved"


async def test_review_rejection_rejects_the_customer(env: WorkflowEnvironment) -> None:
    fake = FakeCompliance(
        screening=CustomerScreeningResult({"PEP": "pep:1"}, pep_hits=[PEP_HIT]),
    )
    async with worker_for(env, fake):
        handle = await start(env)
        await wait_status(handle, "in_review")
        result = await handle.execute_update(
            OnboardingWorkflow.review, signed(handle.id, "reject", "bob")
        )
        view = await handle.result()
    assert result.status == view.status == "rejected"
    assert fake.decisions[-1] == ("review", "rejected", "bob")


async def test_stale_review_is_escalated_never_decided(env: WorkflowEnvironment) -> None:
    fake = FakeCompliance(
        facts=CustomerFacts("individual", "Ivan Petrov", "RU", ADDRESS),
    )
    async with worker_for(env, fake):
        handle = await start(env, review_escalation_seconds=3600)
        await wait_status(handle, "in_review")
        await env.sleep(3599)
        assert fake.escalations == []
        # a day passes without a reviewer (skipped time: waiting on the result with unbounded
        # skipping would run into the test server's default run timeout)
        await env.sleep(86400)
        assert fake.escalations == [3600]
        description = await handle.describe()
        assert description.typed_search_attributes.get(REVIEW_ESCALATED) is True
        view = await handle.query(OnboardingWorkflow.status)
        assert (view.status, view.escalated) == ("in_review", True)
        assert fake.decisions == [("rules", "in_review", "kyc-rules")]
        await handle.execute_update(OnboardingWorkflow.review, signed(handle.id, "approve", "bob"))
        view = await handle.result()
    assert view.status == "approved"
    assert fake.escalations == [3600]
