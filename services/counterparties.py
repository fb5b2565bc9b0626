"""Saved counterparties (issue #18): create (screened, then verified before first use),
read, disable, the verification's outcome, the bank's notifications of change, and the
creditor a payment takes from one.

Every change is one unit of work: the row, its event (`counterparty.verified`,
`counterparty.updated`) and its audit record commit together. Creating starts the
counterparty's verification workflow (id = counterparty id) inside the transaction, as a
payment's start does: if Temporal refuses, nothing exists.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy

from compliance.matcher import decision_for
from kernel.ids import new_id
from kernel.settings import Settings
from kernel.tables import counterparties, payments
from nacha import CHANGE_CODES, read_corrected_data
from rails.charset import epc_text, nacha_text
from services.errors import InvalidRequestError, NotFoundError
from services.events import DeliveryStarter
from services.unit_of_work import UnitOfWork
from services.watch_lists import LoadedLists, screening_hit
from workflows.counterparty_verification import CounterpartyVerificationWorkflow
from workflows.models import VerificationOutcome, VerifyCounterpartyInput

# the verification statuses a payment may go out to without review
VERIFIED = "verified"
PENDING = "pending"
METHOD_BY_RAIL = {"sepa": "vop", "ach": "prenote"}


@dataclass(frozen=True)
class NewCounterparty:
    """A validated counterparty (the API checked the IBAN/BIC or routing/account numbers)
    with its screening at creation."""

    tenant_id: str
    created_by: str
    key_id: str
    rail: str
    type: str
    name: str
    country: str
    screening_decision: str
    screened_at: datetime
    iban: str | None = None
    bic: str | None = None
    routing_number: str | None = None
    account_number: str | None = None
    account_type: str = "checking"
    screening_hits: list[dict[str, Any]] = field(default_factory=list)
    screening_versions: list[str] = field(default_factory=list)


def counterparty_event_id(counterparty_id: str, what: str) -> str:
    """A counterparty's event id, derived from what happened (a retry writes nothing new)."""
    digest = hashlib.sha256(what.encode()).hexdigest()[:12]
    return f"evt_{counterparty_id.removeprefix('cpt_')}_{digest}"


def event_data(row: Any) -> dict[str, Any]:
    """The body of a `counterparty.*` event (no account numbers: webhooks leave the
    platform; the partner reads the counterparty for them)."""
    return {
        "counterparty_id": row.id,
        "rail": row.rail,
        "name": row.name,
        "disabled": row.disabled_at is not None,
        "verification": {
            "status": row.verification_status,
            "method": row.verification_method,
            "matched_name": row.matched_name,
            "reason": row.verification_reason,
        },
    }


def screen_counterparty(lists: LoadedLists, name: str, country: str, type: str) -> dict[str, Any]:
    """The counterparty's screening against the sanctions and PEP lists, as its columns
    (decision, hits at or above review, list versions, when)."""
    party_type = "individual" if type == "individual" else "entity"
    hits = [
        hit
        for matcher in (lists.sanctions, lists.pep)
        for hit in matcher.screen(name, country=country, party_type=party_type)
        if hit.decision != "clear"
    ]
    return {
        "screening_decision": decision_for(hits),
        "screening_hits": [asdict(screening_hit("counterparty", hit)) for hit in hits],
        "screening_versions": [
            lst.version for matcher in (lists.sanctions, lists.pep) for lst in matcher.lists
        ],
        "screened_at": datetime.now(UTC),
    }


def rescreen_page_query(after_id: str, page_size: int) -> Select[Any]:
    """The next page of counterparties (every tenant's) in id order after `after_id`."""
    return (
        select(counterparties)
        .where(counterparties.c.id > after_id)
        .order_by(counterparties.c.id)
        .limit(page_size)
    )


async def rescreen_page(
    engine: AsyncEngine,
    deliveries: DeliveryStarter,
    lists: LoadedLists,
    *,
    run_key: str,
    after_id: str,
    page_size: int,
) -> tuple[list[str], list[str]]:
    """Screen the next page of counterparties (ids after `after_id`) against `lists`;
    returns (the ids screened, those with hits they did not have), each flagged one with a
    `counterparty.updated` event and an audit record, all in one unit of work (a retry finds
    the hits known and flags nothing twice)."""
    async with engine.connect() as conn:
        rows = (await conn.execute(rescreen_page_query(after_id, page_size))).all()
    flagged: list[str] = []
    async with UnitOfWork(engine, deliveries) as uow:
        for row in rows:
            values = screen_counterparty(lists, row.name, row.country, row.type)
            known = {(h["list_name"], h["entity_id"]) for h in row.screening_hits}
            new = [
                h for h in values["screening_hits"] if (h["list_name"], h["entity_id"]) not in known
            ]
            updated = (
                await uow.conn.execute(
                    update(counterparties)
                    .where(counterparties.c.id == row.id)
                    .values(**values, updated_at=values["screened_at"])
                    .returning(*counterparties.c)
                )
            ).one()
            if not new:
                continue
            flagged.append(row.id)
            await uow.event(
                event_id=counterparty_event_id(row.id, f"rescreen:{run_key}"),
                tenant_id=row.tenant_id,
                type="counterparty.updated",
                data={
                    **event_data(updated),
                    "changed": ["screening"],
                    "screening": {
                        "decision": updated.screening_decision,
                        "new_hits": [
                            {k: h[k] for k in ("list_name", "entity_id", "matched_name", "score")}
                            for h in new
                        ],
                    },
                },
                at=values["screened_at"],
            )
            uow.audit(
                actor="list-refresh",
                action="counterparty.watchlist_hit",
                subject=row.id,
                tenant_id=row.tenant_id,
                detail={
                    "list_versions": values["screening_versions"],
                    "new_hits": [h["entity_id"] for h in new],
                },
                idempotency_key=f"{run_key}:{row.id}:watchlist_hit",
            )
    return [row.id for row in rows], flagged


async def create_counterparty(
    engine: AsyncEngine, temporal: Client, settings: Settings, new: NewCounterparty
) -> str:
    """Save the counterparty and start its verification; returns its id."""
    counterparty_id = new_id("cpt")
    async with UnitOfWork(engine) as uow:
        await uow.conn.execute(
            counterparties.insert().values(
                id=counterparty_id,
                tenant_id=new.tenant_id,
                rail=new.rail,
                type=new.type,
                name=new.name,
                country=new.country,
                iban=new.iban,
                bic=new.bic,
                routing_number=new.routing_number,
                account_number=new.account_number,
                account_type=new.account_type,
                verification_status=PENDING,
                verification_method=METHOD_BY_RAIL[new.rail],
                screening_decision=new.screening_decision,
                screening_hits=new.screening_hits,
                screening_versions=new.screening_versions,
                screened_at=new.screened_at,
                created_by=new.created_by,
            )
        )
        # started inside the transaction: if Temporal refuses, the row rolls back (the first
        # activity retries until the row is visible)
        await temporal.start_workflow(
            CounterpartyVerificationWorkflow.run,
            VerifyCounterpartyInput(
                counterparty_id,
                new.rail,
                prenote_window_seconds=settings.counterparties.prenote_window_seconds,
                payee_check_retries=settings.counterparties.payee_check_retries,
                payee_check_retry_seconds=settings.counterparties.payee_check_retry_seconds,
            ),
            id=counterparty_id,
            task_queue=settings.temporal.task_queue,
            rpc_timeout=timedelta(seconds=settings.api.temporal_rpc_timeout_seconds),
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
        uow.audit(
            actor=new.created_by,
            action="counterparty.created",
            subject=counterparty_id,
            tenant_id=new.tenant_id,
            detail={
                "key_id": new.key_id,
                "rail": new.rail,
                "country": new.country,
                "screening": new.screening_decision,
            },
            idempotency_key=f"{counterparty_id}:created",
        )
    return counterparty_id


async def load_counterparty(conn: AsyncConnection, counterparty_id: str) -> Any:
    """The counterparty row (any tenant's: for the workflows' activities), or None."""
    query = select(counterparties).where(counterparties.c.id == counterparty_id)
    return (await conn.execute(query)).first()


async def tenant_counterparty(engine: AsyncEngine, tenant_id: str, counterparty_id: str) -> Any:
    """The tenant's counterparty; `NotFoundError` for another tenant's or no such id."""
    async with engine.connect() as conn:
        row = await load_counterparty(conn, counterparty_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFoundError("counterparty_not_found", f"No counterparty {counterparty_id}.")
    return row


async def disable_counterparty(
    engine: AsyncEngine,
    temporal: Client,
    settings: Settings,
    *,
    tenant_id: str,
    counterparty_id: str,
    actor: str,
) -> Any:
    """Disable the counterparty (payments can no longer name it; those already made keep
    their creditor); disabling it again changes nothing. Returns the row."""
    async with UnitOfWork(engine, DeliveryStarter(temporal, settings)) as uow:
        row = (
            await uow.conn.execute(
                update(counterparties)
                .where(
                    counterparties.c.id == counterparty_id,
                    counterparties.c.tenant_id == tenant_id,
                    counterparties.c.disabled_at.is_(None),
                )
                .values(disabled_at=datetime.now(UTC), updated_at=datetime.now(UTC))
                .returning(*counterparties.c)
            )
        ).first()
        if row is None:  # already disabled, or not the tenant's
            row = await load_counterparty(uow.conn, counterparty_id)
            if row is None or row.tenant_id != tenant_id:
                raise NotFoundError("counterparty_not_found", f"No counterparty {counterparty_id}.")
            return row
        await uow.event(
            event_id=counterparty_event_id(row.id, "disabled"),
            tenant_id=tenant_id,
            type="counterparty.updated",
            data={**event_data(row), "changed": ["disabled"]},
            at=row.disabled_at,
        )
        uow.audit(
            actor=actor,
            action="counterparty.disabled",
            subject=row.id,
            tenant_id=tenant_id,
            idempotency_key=f"{row.id}:disabled",
        )
    return row


async def record_verification(
    engine: AsyncEngine, deliveries: DeliveryStarter, outcome: VerificationOutcome
) -> None:
    """Record a verification's outcome with its `counterparty.verified` event (whatever the
    outcome: the event's `verification.status` says it) and audit record; a counterparty
    already decided keeps its first outcome (a retried activity writes nothing new)."""
    now = datetime.now(UTC)
    async with UnitOfWork(engine, deliveries) as uow:
        row = (
            await uow.conn.execute(
                update(counterparties)
                .where(
                    counterparties.c.id == outcome.counterparty_id,
                    counterparties.c.verification_status == PENDING,
                )
                .values(
                    verification_status=outcome.status,
                    matched_name=outcome.matched_name,
                    verification_reason=outcome.reason,
                    verified_at=now,
                    updated_at=now,
                )
                .returning(*counterparties.c)
            )
        ).first()
        if row is None:
            return
        await uow.event(
            event_id=counterparty_event_id(row.id, "verified"),
            tenant_id=row.tenant_id,
            type="counterparty.verified",
            data=event_data(row),
            at=now,
        )
        uow.audit(
            actor=f"verification:{outcome.method}",
            action="counterparty.verified",
            subject=row.id,
            tenant_id=row.tenant_id,
            detail={
                "status": outcome.status,
                "method": outcome.method,
                "matched_name": outcome.matched_name,
                "reason": outcome.reason,
            },
            idempotency_key=f"{row.id}:verified",
        )


async def apply_change_notice(
    engine: AsyncEngine,
    deliveries: DeliveryStarter,
    *,
    counterparty_id: str,
    change_code: str,
    corrected_data: str,
    source: str,
) -> bool:
    """Apply a notification of change (ACH COR entry) to the saved counterparty, with a
    `counterparty.updated` event and an audit record naming the bank's notice (`source`:
    the return file and trace). Payments already made keep their creditor: a correction
    never reaches an in-flight payment. False when nothing changed (a repeat, an unknown
    code, a counterparty that is not ACH)."""
    if change_code not in CHANGE_CODES:
        return False
    correction = read_corrected_data(change_code, corrected_data)
    async with UnitOfWork(engine, deliveries) as uow:
        row = await load_counterparty(uow.conn, counterparty_id)
        if row is None or row.rail != "ach":
            return False
        changes: dict[str, Any] = {}
        if correction.routing_number and correction.routing_number != row.routing_number:
            changes["routing_number"] = correction.routing_number
        if correction.account_number and correction.account_number != row.account_number:
            changes["account_number"] = correction.account_number
        if correction.name and correction.name != row.name:
            changes["name"] = correction.name
        if correction.transaction_code is not None:
            account_type = "savings" if correction.transaction_code // 10 == 3 else "checking"
            if account_type != row.account_type:
                changes["account_type"] = account_type
        if not changes:
            return False
        now = datetime.now(UTC)
        updated = (
            await uow.conn.execute(
                update(counterparties)
                .where(counterparties.c.id == counterparty_id)
                .values(**changes, updated_at=now)
                .returning(*counterparties.c)
            )
        ).one()
        await uow.event(
            event_id=counterparty_event_id(row.id, f"noc:{source}"),
            tenant_id=row.tenant_id,
            type="counterparty.updated",
            data={**event_data(updated), "changed": sorted(changes), "change_code": change_code},
            at=now,
        )
        uow.audit(
            actor="bank:notification_of_change",
            action="counterparty.corrected",
            subject=row.id,
            tenant_id=row.tenant_id,
            detail={
                "change_code": change_code,
                "source": source,
                "fields": sorted(changes),
                # the old values' shape only: account numbers stay out of the audit log
                "before": {k: _masked(k, getattr(row, k)) for k in changes},
                "after": {k: _masked(k, v) for k, v in changes.items()},
            },
            idempotency_key=f"{row.id}:noc:{source}",
        )
    return True


async def owner_counterparty(engine: AsyncEngine, entry: Any) -> str | None:
    """The saved counterparty an ACH entry (`ach_entries` row) was for: the counterparty of
    a prenote (its entry id is the counterparty id), or the one its payment named."""
    if entry.payment_id.startswith("cpt_"):
        return str(entry.payment_id)
    async with engine.connect() as conn:
        named = (
            await conn.execute(
                select(payments.c.counterparty_id).where(payments.c.id == entry.payment_id)
            )
        ).scalar_one_or_none()
    return None if named is None else str(named)


def _masked(column: str, value: Any) -> Any:
    if column == "account_number" and isinstance(value, str):
        return f"…{value[-4:]}"
    return value


async def counterparty_creditor(
    conn: AsyncConnection, tenant_id: str, counterparty_id: str, rail: str
) -> dict[str, Any]:
    """The creditor of a payment that names `counterparty_id`, read on the payment's own
    connection (its transaction): the tenant's, enabled, on the payment's rail, with its name
    as the rail carries it; `InvalidRequestError` otherwise (the payment rolls back)."""
    row = (
        await conn.execute(
            select(counterparties)
            .where(counterparties.c.id == counterparty_id)
            # a disable waits for this payment to commit, or this payment sees it
            .with_for_update(read=True)
        )
    ).first()
    if row is None or row.tenant_id != tenant_id:
        raise InvalidRequestError(
            "counterparty_not_found", f"No counterparty {counterparty_id}.", param="counterparty_id"
        )
    if row.disabled_at is not None:
        raise InvalidRequestError(
            "counterparty_disabled",
            f"Counterparty {counterparty_id} is disabled.",
            param="counterparty_id",
        )
    if row.rail != rail:
        raise InvalidRequestError(
            "counterparty_rail_mismatch",
            f"Counterparty {counterparty_id} is a {row.rail} counterparty.",
            param="counterparty_id",
        )
    fields = {
        "name": row.name,
        "country": row.country,
        "iban": row.iban,
        "bic": row.bic,
        "routing_number": row.routing_number,
        "account_number": row.account_number,
        "rail_name": nacha_text(row.name) if rail == "ach" else epc_text(row.name),
    }
    return {k: v for k, v in fields.items() if v is not None}


def review_reasons(verification_status: str | None, screening_decision: str | None) -> list[str]:
    """Why a payment to a counterparty waits for review: it is not verified (pending,
    close match, no match, a failed prenote), or its screening at creation was not clear."""
    reasons = []
    if verification_status is not None and verification_status != VERIFIED:
        reasons.append(f"counterparty not verified ({verification_status})")
    if screening_decision not in (None, "clear"):
        reasons.append(f"counterparty screening: {screening_decision}")
    return reasons
