"""Sanctions screening activity over the lists loaded at worker start."""

from __future__ import annotations

from temporalio import activity

from compliance.screening import SanctionsList
from workflows.models import ScreeningHit, ScreeningInput, ScreeningResult


class ScreeningActivities:
    """Screens the parties of a payment; the list is injected (loaded once per worker)."""

    def __init__(self, sanctions: SanctionsList) -> None:
        self._sanctions = sanctions

    @activity.defn(name="screen_parties")
    async def screen_parties(self, request: ScreeningInput) -> ScreeningResult:
        """Screen the creditor's name; every hit records the list version screened against."""
        hits = [
            ScreeningHit(
                party="creditor",
                list_name=hit.list_name,
                list_version=hit.list_version,
                entity_id=hit.entity_id,
                matched_name=hit.matched_name,
                score=hit.score,
            )
            for hit in self._sanctions.screen(request.creditor_name)
        ]
        return ScreeningResult(self._sanctions.version, hits)
