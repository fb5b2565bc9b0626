"""Counterparties: saved beneficiaries, screened at creation and verified before first use
(DESIGN §10): create, read, list, disable."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncEngine

from api.deps import AppSettings, Engine, Reader, Temporal, Writer
from api.errors import ProblemError
from api.fields import COUNTERPARTY_ID, EXAMPLE_COUNTERPARTY_ID
from api.pagination import keyset_after, page_query
from api.problems import (
    ACCOUNT_DETAILS_REQUIRED,
    AUTHENTICATED,
    COUNTERPARTY_NOT_FOUND,
    IBAN_REQUIRED,
    INVALID_ACCOUNT_NUMBER,
    INVALID_BIC,
    INVALID_CURSOR,
    INVALID_IBAN,
    INVALID_ROUTING_NUMBER,
    ORCHESTRATED,
    ROUTING_AND_ACCOUNT_REQUIRED,
    TEXT_NOT_REPRESENTABLE,
    WITH_BODY,
    WITH_PARAMETERS,
    problems,
)
from api.routers.customers import _hit_out
from api.routers.payments import validate_account
from api.schemas import (
    CounterpartyCreate,
    CounterpartyList,
    CounterpartyOut,
    CounterpartyScreeningOut,
    VerificationOut,
)
from kernel.tables import counterparties
from rails.charset import epc_text, meaningful, nacha_text
from services import counterparties as service
from services.watch_lists import WatchLists

router = APIRouter(prefix="/v1/counterparties", tags=["counterparties"])
CounterpartyIdPath = Annotated[
    str, Path(pattern=COUNTERPARTY_ID, examples=[EXAMPLE_COUNTERPARTY_ID])
]


def counterparty_out(row: Any) -> CounterpartyOut:
    """Render a counterparty row."""
    return CounterpartyOut(
        id=row.id,
        rail=row.rail,
        type=row.type,
        name=row.name,
        country=row.country,
        iban=row.iban,
        bic=row.bic,
        routing_number=row.routing_number,
        account_number=row.account_number,
        account_type=row.account_type if row.rail == "ach" else None,
        verification=VerificationOut(
            status=row.verification_status,
            method=row.verification_method,
            matched_name=row.matched_name,
            reason=row.verification_reason,
            verified_at=row.verified_at,
        ),
        screening=CounterpartyScreeningOut(
            decision=row.screening_decision,
            hits=[_hit_out(hit) for hit in row.screening_hits],
            list_versions=row.screening_versions,
            screened_at=row.screened_at,
        ),
        disabled=row.disabled_at is not None,
        disabled_at=row.disabled_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _rail_of(body: CounterpartyCreate) -> str:
    """SEPA for an IBAN, ACH for routing + account number; neither or both is refused."""
    sepa = body.iban is not None or body.bic is not None
    ach = (
        body.routing_number is not None
        or body.account_number is not None
        or body.account_type is not None
    )
    if sepa == ach:
        raise ProblemError(
            422,
            "account_details_required",
            "Give iban (+bic) for SEPA or routing_number and account_number for ACH, not both.",
            param="iban",
        )
    return "sepa" if sepa else "ach"


async def _screen(request: Request, body: CounterpartyCreate) -> dict[str, Any]:
    """The counterparty's screening against the current sanctions and PEP lists."""
    lists: WatchLists = request.app.state.lists
    loaded = await lists.current()
    return service.screen_counterparty(loaded, body.name, body.country, body.type)


@router.post(
    "",
    status_code=201,
    response_model=CounterpartyOut,
    responses=problems(
        AUTHENTICATED,
        ORCHESTRATED,
        WITH_BODY,
        ACCOUNT_DETAILS_REQUIRED,
        IBAN_REQUIRED,
        INVALID_IBAN,
        INVALID_BIC,
        ROUTING_AND_ACCOUNT_REQUIRED,
        INVALID_ROUTING_NUMBER,
        INVALID_ACCOUNT_NUMBER,
        TEXT_NOT_REPRESENTABLE,
    ),
)
async def create_counterparty(
    body: CounterpartyCreate,
    principal: Writer,
    request: Request,
    engine: Engine,
    temporal: Temporal,
    settings: AppSettings,
) -> CounterpartyOut:
    """Save a beneficiary: screened now, then verified at the bank (`verification.status`
    `pending` until it answers: a name check for SEPA, a prenote for ACH)."""
    rail = _rail_of(body)
    valid = validate_account(rail, body, "")
    rail_name = nacha_text(body.name) if rail == "ach" else epc_text(body.name)
    if not meaningful(rail_name):
        raise ProblemError(
            422,
            "text_not_representable",
            f"name has no letter or digit the {rail} rail can carry.",
            param="name",
        )
    counterparty_id = await service.create_counterparty(
        engine,
        temporal,
        settings,
        service.NewCounterparty(
            tenant_id=principal.tenant_id,
            created_by=principal.name,
            key_id=principal.key_id,
            rail=rail,
            type=body.type,
            name=body.name,
            country=body.country,
            iban=valid.iban,
            bic=valid.bic,
            routing_number=valid.routing_number,
            account_number=valid.account_number,
            account_type=body.account_type or "checking",
            **await _screen(request, body),
        ),
    )
    return await _load(engine, principal.tenant_id, counterparty_id)


async def _load(engine: AsyncEngine, tenant_id: str, counterparty_id: str) -> CounterpartyOut:
    # another tenant's id is simply not found (404 `counterparty_not_found`)
    return counterparty_out(await service.tenant_counterparty(engine, tenant_id, counterparty_id))


@router.get(
    "/{counterparty_id}",
    response_model=CounterpartyOut,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS, COUNTERPARTY_NOT_FOUND),
)
async def get_counterparty(
    counterparty_id: CounterpartyIdPath, principal: Reader, engine: Engine
) -> CounterpartyOut:
    """A counterparty with its verification and screening."""
    return await _load(engine, principal.tenant_id, counterparty_id)


def counterparties_page_query(
    tenant_id: str,
    *,
    limit: int,
    after: tuple[Any, str] | None = None,
    rail: str | None = None,
) -> Select[Any]:
    """A page of the tenant's counterparties, newest first, optionally by rail."""
    return page_query(counterparties, tenant_id, limit=limit, after=after, filters={"rail": rail})


@router.get(
    "",
    response_model=CounterpartyList,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS, INVALID_CURSOR),
)
async def list_counterparties(
    principal: Reader,
    engine: Engine,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    starting_after: Annotated[str | None, Query(pattern=COUNTERPARTY_ID)] = None,
    rail: Literal["sepa", "ach"] | None = None,
) -> CounterpartyList:
    """The tenant's counterparties (disabled ones too), newest first; page with
    `starting_after=<last id>`."""
    async with engine.connect() as conn:
        after = await keyset_after(
            conn, counterparties, principal.tenant_id, starting_after, "a counterparty"
        )
        query = counterparties_page_query(principal.tenant_id, limit=limit, after=after, rail=rail)
        rows = (await conn.execute(query)).all()
    return CounterpartyList(
        data=[counterparty_out(row) for row in rows[:limit]], has_more=len(rows) > limit
    )


@router.delete(
    "/{counterparty_id}",
    response_model=CounterpartyOut,
    responses=problems(AUTHENTICATED, WITH_PARAMETERS, COUNTERPARTY_NOT_FOUND),
)
async def disable_counterparty(
    counterparty_id: CounterpartyIdPath,
    principal: Writer,
    engine: Engine,
    temporal: Temporal,
    settings: AppSettings,
) -> CounterpartyOut:
    """Disable a counterparty: payments can no longer name it (those made keep their
    creditor). Kept, and listed, as `disabled`."""
    row = await service.disable_counterparty(
        engine,
        temporal,
        settings,
        tenant_id=principal.tenant_id,
        counterparty_id=counterparty_id,
        actor=principal.name,
    )
    return counterparty_out(row)
