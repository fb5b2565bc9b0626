"""Sanctions screening of a payment's parties, with the matcher loaded at worker start."""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from activities.metrics import count
from compliance.matcher import Matcher
from kernel import audit
from services.watch_lists import screening_hit
from workflows.models import ScreeningInput, ScreeningResult


class ScreeningActivities:
    """Screens debtor and creditor; every hit records the list version it matched."""

    def __init__(self, matcher: Matcher, engine: AsyncEngine) -> None:
        self._matcher = matcher
        self._engine = engine

    @activity.defn(name="screen_parties")
    async def screen_parties(self, request: ScreeningInput) -> ScreeningResult:
        """Potential matches at or above the review threshold, for both parties."""
        parties = [("creditor", request.creditor_name, request.creditor_country)]
        if request.debtor_name:
            parties.append(("debtor", request.debtor_name, request.debtor_country))
        hits = [
            screening_hit(party, hit)
            for party, name, country in parties
            for hit in self._matcher.screen(name, country=country or None)
            if hit.decision != "clear"
        ]
        for hit in hits:
            count(
                "payments_screening_hits",
                "Potential sanctions matches",
                party=hit.party,
                decision=hit.decision,
            )
        versions = ",".join(sorted({lst.version for lst in self._matcher.lists}))
        # the decision and what it rested on, for the auditor (list versions, scores, why)
        await audit.append(
            self._engine,
            actor="screening",
            action="screening.completed",
            subject=request.payment_id,
            detail={"list_versions": versions, "hits": [asdict(hit) for hit in hits]},
            idempotency_key=f"{request.payment_id}:screening",
        )
        return ScreeningResult(versions, hits)
