"""Onboarding activities: screen a customer, apply the KYC rules, persist each decision.

Each reads the customer by id (the workflow carries no personal data) and is idempotent on
the customer id and the step, so a retried activity never records a decision twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client

from activities.list_refresh import ListRefreshActivities
from activities.metrics import count
from compliance.kyc import CustomerFacts, ListMatch, evaluate
from kernel import audit
from kernel.codec import FieldSealer, data_key_store
from kernel.settings import Settings
from kernel.tables import customers
from services.erasure import sealed_hits
from services.events import DeliveryStarter
from services.unit_of_work import UnitOfWork
from services.watch_lists import WatchLists, screen_customer_row
from workflows.models import (
    CustomerRef,
    CustomerScreeningResult,
    KycEscalationInput,
    KycEvaluation,
    KycEvaluationInput,
    RecordKycInput,
    ScreeningHit,
)

log = structlog.get_logger()


class CustomerNotFoundError(Exception):
    """The customer row is not visible (yet): the API starts the workflow inside the
    transaction that inserts it, so a first attempt may run before the commit. Retried."""


def list_matches(screening: CustomerScreeningResult) -> list[ListMatch]:
    """The KYC rules' view of a screening: which hits are PEP matches, which sanctions."""

    def match(kind: str, hit: ScreeningHit) -> ListMatch:
        return ListMatch(
            "pep" if kind == "pep" else "sanctions",
            hit.list_name,
            hit.entity_id,
            hit.matched_name,
            hit.score,
            hit.decision,
        )

    return [match("sanctions", h) for h in screening.sanctions_hits] + [
        match("pep", h) for h in screening.pep_hits
    ]


def customer_facts(row: Any) -> CustomerFacts:
    """The KYC rules' view of a `customers` row."""
    return CustomerFacts(
        type=row.type,
        name=row.name,
        country=row.country.strip(),
        address=row.address,
        date_of_birth=row.date_of_birth,
        national_id=row.national_id,
        tax_id=row.tax_id,
        registration_number=row.registration_number,
    )


class OnboardingActivities:
    """Side effects of the onboarding workflow."""

    def __init__(
        self, engine: AsyncEngine, lists: WatchLists, client: Client, settings: Settings
    ) -> None:
        self._engine = engine
        self._lists = lists
        self._deliveries = DeliveryStarter(client, settings)
        # the audit record's explanations quote the customer's name: sealed under its key
        self._sealer = FieldSealer(data_key_store(settings))

    async def _customer(self, ref: CustomerRef) -> Any:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(customers).where(
                        customers.c.id == ref.customer_id, customers.c.tenant_id == ref.tenant_id
                    )
                )
            ).first()
        if row is None:
            raise CustomerNotFoundError(ref.customer_id)
        return row

    @activity.defn(name="screen_customer")
    async def screen_customer(self, ref: CustomerRef) -> CustomerScreeningResult:
        """Screen the customer against the sanctions and PEP lists; record hits and versions."""
        row = await self._customer(ref)
        lists = await self._lists.current()
        result = screen_customer_row(lists, row)
        hits = [asdict(hit) for hit in result.hits]
        async with UnitOfWork(self._engine) as uow:
            await uow.conn.execute(
                update(customers)
                .where(customers.c.id == ref.customer_id)
                .values(
                    screening_hits=hits,
                    screening_list_versions=result.list_versions,
                    screened_at=datetime.now(UTC),
                )
            )
            uow.audit(
                actor="screening",
                action="screening.completed",
                subject=ref.customer_id,
                tenant_id=ref.tenant_id,
                detail={
                    "list_versions": result.list_versions,
                    "hits": await sealed_hits(self._sealer, ref.customer_id, hits),
                },
                idempotency_key=f"{ref.customer_id}:screening",
            )
        for hit in hits:
            count("customer_screening_hits", "Customer watch-list matches", list=hit["list_name"])
        return result

    @activity.defn(name="evaluate_customer_kyc")
    async def evaluate_customer_kyc(self, request: KycEvaluationInput) -> KycEvaluation:
        """Apply the KYC rules to the customer as of the workflow's date (no side effects)."""
        row = await self._customer(CustomerRef(request.customer_id, request.tenant_id))
        decision = evaluate(
            customer_facts(row), date.fromisoformat(request.as_of), list_matches(request.screening)
        )
        return KycEvaluation(
            status=decision.status,
            risk_tier=decision.risk_tier,
            review_date=decision.review_date.isoformat(),
            reasons=list(decision.reasons),
            notes=list(decision.notes),
        )

    @activity.defn(name="record_kyc_decision")
    async def record_kyc_decision(self, request: RecordKycInput) -> None:
        """Persist a decision: the customer row, an audit entry naming who decided, and the
        `customer.kyc_<status>` event for the tenant's webhooks, in one transaction."""
        decision = request.evaluation
        decided_at = datetime.fromisoformat(request.decided_at)
        review = request.step == "review"
        detail: dict[str, Any] = {
            "status": decision.status,
            "risk_tier": decision.risk_tier,
            "review_date": decision.review_date,
            "reasons": decision.reasons,
            "notes": decision.notes,
        }
        if review:
            detail["note"] = request.note
        if request.screening is not None:
            detail["list_versions"] = request.screening.list_versions
            detail["hits"] = [asdict(hit) for hit in request.screening.hits]
        values: dict[str, Any] = {
            "kyc_status": decision.status,
            "kyc_risk_tier": decision.risk_tier,
            "kyc_review_date": date.fromisoformat(decision.review_date),
            "kyc_reasons": decision.reasons,
            "kyc_notes": decision.notes,
            "kyc_decided_at": decided_at,
            "kyc_decided_by": request.decided_by,
        }
        if review:
            values["kyc_review_note"] = request.note
        async with UnitOfWork(self._engine, self._deliveries) as uow:
            await uow.conn.execute(
                update(customers).where(customers.c.id == request.customer_id).values(values)
            )
            await uow.event(**_kyc_event(request, decided_at))
            uow.audit(
                actor=request.decided_by,
                action=f"kyc.review.{'approve' if decision.status == 'approved' else 'reject'}"
                if review
                else "kyc.decided",
                subject=request.customer_id,
                tenant_id=request.tenant_id,
                detail=detail,
                idempotency_key=f"{request.customer_id}:kyc:{request.step}",
            )
        log.info("kyc decision recorded", customer_id=request.customer_id, status=decision.status)
        count("kyc_decisions", "KYC decisions", status=decision.status, step=request.step)

    @activity.defn(name="record_kyc_escalation")
    async def record_kyc_escalation(self, request: KycEscalationInput) -> None:
        """A customer review waited too long: an audit entry and a log line ops alert on."""
        await audit.append(
            self._engine,
            actor="onboarding",
            action="kyc.review_escalated",
            subject=request.customer_id,
            tenant_id=request.tenant_id,
            detail={"waited_seconds": request.waited_seconds, "reasons": request.reasons},
            idempotency_key=f"{request.customer_id}:kyc:review_escalated",
        )
        log.warning(
            "kyc review escalated",
            customer_id=request.customer_id,
            waited_seconds=request.waited_seconds,
        )
        count("kyc_review_escalations", "Customer reviews escalated for waiting too long")


def _kyc_event(request: RecordKycInput, at: datetime) -> dict[str, Any]:
    """The decision's event (one per customer and step, so a retry writes nothing new).

    A thin event: the status and the re-verification date. Why a customer went to review or
    was rejected (list matches, PEP status) is read from `GET /v1/customers/{id}`, so a
    webhook log or a misrouted endpoint never holds more compliance detail than needed.
    """
    decision = request.evaluation
    return {
        "event_id": f"evt_{request.customer_id.removeprefix('cus_')}_kyc_{request.step}",
        "tenant_id": request.tenant_id,
        "type": f"customer.kyc_{decision.status}",
        "data": {
            "customer_id": request.customer_id,
            "kyc_status": decision.status,
            "review_date": decision.review_date,
            "decided_by": "review" if request.step == "review" else "rules",
        },
        "at": at,
    }


def compliance_list_activities(
    engine: AsyncEngine, lists: WatchLists, client: Client, settings: Settings
) -> list[Callable[..., Any]]:
    """Onboarding and watch-list activities of the `compliance` queue."""
    onboarding = OnboardingActivities(engine, lists, client, settings)
    refresh = ListRefreshActivities(engine, lists, client, settings)
    return [
        onboarding.screen_customer,
        onboarding.evaluate_customer_kyc,
        onboarding.record_kyc_decision,
        onboarding.record_kyc_escalation,
        refresh.refresh_watch_lists,
        refresh.rescreen_customers_page,
        refresh.rescreen_counterparties_page,
    ]
