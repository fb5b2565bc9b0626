"""Ad-hoc sanctions screening (DESIGN §7)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.deps import Engine, Reader
from api.limits import RateLimiter, take_or_refuse
from api.problems import AUTHENTICATED, WITH_BODY, problems
from api.schemas import ScreeningCreate, ScreeningHitOut, ScreeningOut
from compliance.matcher import decision_for
from kernel import audit
from kernel.ids import new_id
from services.watch_lists import WatchLists

router = APIRouter(prefix="/v1/screenings", tags=["screenings"])


@router.post("", response_model=ScreeningOut, responses=problems(AUTHENTICATED, WITH_BODY))
async def screen(
    body: ScreeningCreate, principal: Reader, request: Request, engine: Engine
) -> ScreeningOut:
    """Screen a name; hits at or above the review threshold, with scores and explanations.

    Limited to `screening_rate_limit_per_minute` calls per key (429 `rate_limited`), and
    every call is audited: who screened which name, when, and the answer.
    """
    limiter: RateLimiter = request.app.state.screening_limiter
    take_or_refuse(limiter, principal.key_id, None, "screenings")
    lists: WatchLists = request.app.state.lists
    loaded = await lists.current()
    matchers = (loaded.sanctions, loaded.pep)
    party_type = {"individual": "individual", "business": "entity"}.get(body.type or "")
    hits = [
        hit
        for matcher in matchers
        for hit in matcher.screen(body.name, country=body.country, party_type=party_type)
        if hit.decision != "clear"
    ]
    screening_id = new_id("scr")
    decision = decision_for(hits)
    await audit.append(
        engine,
        actor=principal.name,
        action="screening.requested",
        subject=screening_id,
        tenant_id=principal.tenant_id,
        detail={
            "key_id": principal.key_id,
            "name": body.name,
            "country": body.country,
            "type": body.type,
            "decision": decision,
            "hits": [hit.entity_id for hit in hits],
        },
    )
    return ScreeningOut(
        id=screening_id,
        name=body.name,
        decision=decision,
        hits=[
            ScreeningHitOut(
                list=hit.list_name,
                list_version=hit.list_version,
                entity_id=hit.entity_id,
                matched_name=hit.matched_name,
                score=round(hit.score, 4),
                decision=hit.decision,  # type: ignore[arg-type]
                explanation=str(hit.explanation),
            )
            for hit in hits
        ],
        list_versions=[lst.version for matcher in matchers for lst in matcher.lists],
    )
