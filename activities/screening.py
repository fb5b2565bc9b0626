"""Sanctions screening of a payment's parties, with the matcher loaded at worker start."""

from __future__ import annotations

from dataclasses import asdict, replace

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from activities.metrics import count
from compliance.free_text import screen_free_text
from compliance.matcher import Flag, Matcher
from kernel import audit
from kernel.codec import FieldSealer, data_key_store
from kernel.settings import get_settings
from services import erasure
from services.watch_lists import screening_hit
from workflows.models import ScreeningHit, ScreeningInput, ScreeningResult

# hits that come from the screened input itself, not from a list
INPUT_CHECKS = erasure.INPUT_CHECKS


def flag_hit(party: str, flag: Flag) -> ScreeningHit:
    """A review reason found in the input (mixed scripts, country mismatch) as a hit, so the
    payment waits in review with the reason shown beside any list hits."""
    return ScreeningHit(
        party=party,
        list_name=INPUT_CHECKS,
        list_version="",
        entity_id=flag.kind,
        matched_name=flag.detail,
        score=0.0,
        decision="review",
        explanation=f"{flag.kind}: {flag.detail}",
    )


class ScreeningActivities:
    """Screens debtor and creditor; every hit records the list version it matched."""

    def __init__(
        self, matcher: Matcher, engine: AsyncEngine, sealer: FieldSealer | None = None
    ) -> None:
        self._matcher = matcher
        self._engine = engine
        # the audit record's explanations quote the names: sealed under the payment's key
        self._sealer = sealer or FieldSealer(data_key_store(get_settings()))

    def _party_hits(self, party: str, name: str, country: str, iban: str) -> list[ScreeningHit]:
        """List hits at or above review, and the input's own review reasons (a word mixing
        scripts, a declared country the IBAN contradicts)."""
        screening = self._matcher.screening(name, country=country or None, iban=iban or None)
        hits = [screening_hit(party, hit) for hit in screening.hits if hit.decision != "clear"]
        return hits + [flag_hit(party, flag) for flag in screening.flags]

    def _remittance_hits(self, text: str) -> list[ScreeningHit]:
        """Listed entities named in the remittance text: a review reason, never a block (the
        text names them; it is not a party)."""
        found = screen_free_text(self._matcher, text)
        hits = [
            replace(screening_hit("remittance", hit.hit), decision="review") for hit in found.hits
        ]
        return hits + [flag_hit("remittance", flag) for flag in found.flags]

    @activity.defn(name="screen_parties")
    async def screen_parties(self, request: ScreeningInput) -> ScreeningResult:
        """Potential matches at or above the review threshold, for both parties."""
        hits = self._party_hits(
            "creditor", request.creditor_name, request.creditor_country, request.creditor_iban
        )
        if request.debtor_name:
            hits += self._party_hits("debtor", request.debtor_name, request.debtor_country, "")
        if request.remittance_info:
            hits += self._remittance_hits(request.remittance_info)
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
            # the payment's tenant's chain: a platform record per payment would make every
            # payment wait on the platform chain's lock
            tenant_id=await audit.payment_tenant(self._engine, request.payment_id),
            detail={
                "list_versions": versions,
                "hits": await erasure.sealed_hits(
                    self._sealer, request.payment_id, [asdict(hit) for hit in hits]
                ),
            },
            idempotency_key=f"{request.payment_id}:screening",
        )
        return ScreeningResult(versions, hits)
