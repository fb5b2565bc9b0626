"""Erasure of a customer's personal data (GDPR Art. 17, issue #17), reconciled with the AML
record-keeping a regulated payments firm owes.

What is refused (409, nothing changes):
- `customer_has_open_payments`: a payment not yet final, or a workflow of the customer still
  running (a settled payment waiting out its return window, an onboarding in review). Its
  workflow still needs its payloads; erase once it is over.
- `customer_has_balance`: an account of the customer holds money (posted or pending). The
  money is owed to the customer and must be paid out first; erasing the owner of a balance
  would leave funds nobody can be identified to receive.

What is kept, and how:
- The ledger, the payments' amounts, currencies, dates, statuses, the audit chain, and every
  id: pseudonymous (`cus_…`, `pay_…`, `acc_…`), so `payments ledger verify` and `payments
  audit verify` still pass and the books stay provable. Audit records hold ids and codes,
  never names (screening explanations are sealed under the subject's data key), so nothing
  in the hash chain needs rewriting.
- What AML law requires (EU AMLD Art. 40, US BSA 31 CFR 1010.430: the customer's identity
  and the records of its transactions, 5 years): sealed into `legal_holds` under a key of
  its own (`hold:<customer>`), readable only by compliance until the hold ends, then
  shredded by the retention purge (`retention.legal_hold_seconds`; 0 keeps nothing).

What is erased, in one transaction:
- the customer row's personal fields (name, address, date of birth, ids, screening notes);
- its payments' creditor name, IBAN / account number, remittance text, metadata, failure text
  (and the same in its deleted payment schedules' template; a schedule not deleted refuses
  the erasure, as an open payment does);
- personal strings inside status-history details, its events (and so the webhook bodies sent
  from them from now on), webhook delivery errors, and stored idempotency responses;
- the data keys of its onboarding and payment workflows: every Temporal payload of those
  histories (inputs, results, signals, failure messages) and every field sealed under them
  (ACH window entries, audit explanations) is unreadable from then on, in Temporal's
  database, its archives and its backups alike (crypto-shredding).

Logs never hold personal data in the first place (kernel/redaction.py), so nothing is
scrubbed there. A restore of a PostgreSQL backup taken before an erasure brings the data
back: `customer_erasures` (ids only) lists what to erase again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, Text, cast, false, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio.client import Client

from kernel.codec import ERASED, FieldSealer, data_key_store
from kernel.settings import Settings
from kernel.tables import (
    customer_erasures,
    customers,
    events,
    idempotency_keys,
    legal_holds,
    payload_data_keys,
    payment_schedules,
    payment_status_history,
    payments,
    webhook_deliveries,
)
from ledger.tables import ledger_accounts
from services.errors import ConflictError, NotFoundError
from services.unit_of_work import UnitOfWork
from workflows.models import TERMINAL_STATUSES

# the list name of review reasons found in the screened input itself (activities/screening.py)
INPUT_CHECKS = "input-checks"
# strings shorter than this are not searched for inside other text: a 2-letter country code
# or a short postal fragment would blank unrelated values
_MIN_SECRET = 4


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure did (or, `already`, had done before)."""

    customer_id: str
    tenant_id: str
    erased_at: datetime
    payments: int
    keys_shredded: int
    legal_hold_until: datetime | None
    already: bool = False


def hold_subject(customer_id: str) -> str:
    """The data-key subject of a customer's legal hold (never shredded by its erasure)."""
    return f"hold:{customer_id}"


def _norm(text: str) -> str:
    # IBANs and numbers are written grouped or not, in either case
    return "".join(text.split()).casefold()


def personal_strings(customer: Any | None, payment_rows: Iterable[Any]) -> set[str]:
    """Personal values as text: a customer's identity (if given), and its payments'
    creditors and remittance texts."""
    found: list[Any] = []
    if customer is not None:
        found += [
            customer.name,
            customer.national_id,
            customer.tax_id,
            customer.registration_number,
            customer.date_of_birth.isoformat() if customer.date_of_birth else None,
        ]
        address = customer.address or {}
        found += [address.get(k) for k in ("line1", "line2", "city", "postal_code")]
    for payment in payment_rows:
        creditor = payment.creditor or {}
        found += [creditor.get(k) for k in ("name", "rail_name", "iban", "account_number")]
        found.append(payment.remittance_info)
    return {str(v) for v in found if v and len(_norm(str(v))) >= _MIN_SECRET}


def scrub(value: Any, secrets: set[str]) -> Any:
    """`value` (JSON-like) with every string that contains one of `secrets` replaced by
    `[erased]`; shape, ids and amounts unchanged."""
    if isinstance(value, str):
        text = _norm(value)
        return ERASED if any(_norm(s) in text for s in secrets) else value
    if isinstance(value, dict):
        return {k: scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    return value


async def sealed_hits(
    sealer: FieldSealer, subject: str, hits: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Screening hits as the audit chain keeps them: the explanation (it quotes the screened
    name's words) and an input check's detail (the name itself) sealed under the subject's
    data key. The chain's hash covers the sealed text, so shredding the key erases them and
    the chain still verifies; list, entity, score and decision stay readable."""
    out = []
    for hit in hits:
        hit = dict(hit)
        if hit.get("explanation"):
            hit["explanation"] = await sealer.seal(subject, str(hit["explanation"]))
        if hit.get("list_name") == INPUT_CHECKS and hit.get("matched_name"):
            hit["matched_name"] = await sealer.seal(subject, str(hit["matched_name"]))
        out.append(hit)
    return out


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


async def _load(conn: AsyncConnection, customer_id: str, tenant_id: str | None) -> Any:
    # the id also goes into a Temporal visibility query: only an id's own shape gets there
    if not re.fullmatch(r"cus_[0-9A-Za-z]{1,64}", customer_id):
        raise NotFoundError("customer_not_found", f"No customer {customer_id!r}.")
    query = select(customers).where(customers.c.id == customer_id).with_for_update()
    if tenant_id is not None:
        query = query.where(customers.c.tenant_id == tenant_id)
    row = (await conn.execute(query)).first()
    if row is None:
        raise NotFoundError("customer_not_found", f"No customer {customer_id}.")
    return row


def open_payments_query(customer_id: str) -> Select[Any]:
    """How many of the customer's payments are not final yet."""
    return (
        select(func.count())
        .select_from(payments)
        .where(
            payments.c.customer_id == customer_id,
            payments.c.status.not_in([str(s) for s in TERMINAL_STATUSES]),
        )
    )


async def _refuse_open_payments(
    conn: AsyncConnection, temporal: Client | None, customer_id: str
) -> None:
    open_ = (await conn.execute(open_payments_query(customer_id))).scalar_one()
    running = 0
    if temporal is not None:
        # a settled payment still waiting out its return window, an onboarding in review:
        # final in the database, but their workflows still need their payloads
        running = (
            await temporal.count_workflows(
                f"(CustomerId = '{customer_id}' OR WorkflowId = '{customer_id}') "
                "AND ExecutionStatus = 'Running'"
            )
        ).count
    if open_ or running:
        raise ConflictError(
            "customer_has_open_payments",
            f"Customer {customer_id} has {max(open_, running)} payment(s) or workflow(s) not "
            "yet over (including settled payments within their return window); erase it "
            "once they have ended.",
        )


def _schedules_of(customer_id: str) -> Any:
    return payment_schedules.c.template["customer_id"].astext == customer_id


async def _refuse_live_schedules(conn: AsyncConnection, customer_id: str) -> None:
    """A payment schedule not deleted would go on paying from the customer's account."""
    live = (
        await conn.execute(
            select(func.count()).where(
                _schedules_of(customer_id), payment_schedules.c.status != "deleted"
            )
        )
    ).scalar_one()
    if live:
        raise ConflictError(
            "customer_has_open_payments",
            f"Customer {customer_id} has {live} payment schedule(s) not deleted; delete them"
            " (DELETE /v1/payment-schedules/{id}), then erase it.",
        )


async def _erase_schedule_templates(conn: AsyncConnection, customer_id: str) -> list[Any]:
    """Blank the personal details of the customer's (deleted) schedules' payment template,
    as a payment's are: the creditor keeps only its country. Returns the templates as they
    were (their `creditor` and `remittance_info`, for `personal_strings`)."""
    rows = (
        await conn.execute(
            select(payment_schedules.c.id, payment_schedules.c.template).where(
                _schedules_of(customer_id)
            )
        )
    ).all()
    erased: list[Any] = []
    for row in rows:
        creditor = row.template.get("creditor") or {}
        erased.append(
            SimpleNamespace(creditor=creditor, remittance_info=row.template.get("remittance_info"))
        )
        template = {
            **row.template,
            "creditor": {"name": ERASED, "country": creditor.get("country", "")},
            "remittance_info": None,
            "metadata": {},
        }
        await conn.execute(
            update(payment_schedules)
            .where(payment_schedules.c.id == row.id)
            .values(template=template)
        )
    return erased


async def _refuse_balance(conn: AsyncConnection, customer_id: str) -> None:
    accounts = ledger_accounts.c
    holding = (
        (
            await conn.execute(
                select(accounts.id).where(
                    accounts.customer_id == customer_id,
                    or_(
                        accounts.credits_posted != accounts.debits_posted,
                        accounts.credits_pending != 0,
                        accounts.debits_pending != 0,
                    ),
                )
            )
        )
        .scalars()
        .all()
    )
    if holding:
        raise ConflictError(
            "customer_has_balance",
            f"Account(s) {', '.join(holding)} of customer {customer_id} hold money; pay it "
            "out before erasing the customer.",
        )


def _legal_hold_record(customer: Any, payment_rows: Sequence[Any]) -> dict[str, Any]:
    """What AML record-keeping needs: identity (CDD) and each transaction's parties."""
    identity = {
        k: getattr(customer, k)
        for k in (
            "id",
            "type",
            "name",
            "country",
            "address",
            "date_of_birth",
            "national_id",
            "tax_id",
            "registration_number",
            "kyc_status",
            "kyc_risk_tier",
            "screening_hits",
            "created_at",
        )
    }
    transactions = [
        {
            k: getattr(p, k)
            for k in (
                "id",
                "account_id",
                "amount",
                "currency",
                "rail",
                "creditor",
                "remittance_info",
                "status",
                "created_at",
                "screening_hits",
            )
        }
        for p in payment_rows
    ]
    record: dict[str, Any] = _json({"customer": identity, "payments": transactions})
    return record


async def erase_customer(
    engine: AsyncEngine,
    temporal: Client | None,
    settings: Settings,
    *,
    customer_id: str,
    actor: str,
    tenant_id: str | None = None,
    reason: str | None = None,
) -> ErasureReport:
    """Erase a customer's personal data (see the module docstring). `tenant_id` scopes the
    look-up (the API: a tenant erases only its own); None is the platform (the CLI).
    Idempotent: erasing an erased customer answers the first erasure's report."""
    now = datetime.now(UTC)
    store = data_key_store(settings)
    sealer = FieldSealer(store)
    async with UnitOfWork(engine) as uow:
        conn = uow.conn
        customer = await _load(conn, customer_id, tenant_id)
        if customer.erased_at is not None:
            done = (
                await conn.execute(
                    select(customer_erasures).where(customer_erasures.c.customer_id == customer_id)
                )
            ).one()
            return ErasureReport(
                customer_id,
                customer.tenant_id,
                done.erased_at,
                done.payments,
                done.keys_shredded,
                done.legal_hold_until,
                already=True,
            )
        await _refuse_open_payments(conn, temporal, customer_id)
        await _refuse_live_schedules(conn, customer_id)
        await _refuse_balance(conn, customer_id)
        # their creditors are personal strings too (stored idempotency answers name them)
        schedule_templates = await _erase_schedule_templates(conn, customer_id)
        payment_rows = (
            await conn.execute(
                select(payments).where(payments.c.customer_id == customer_id).with_for_update()
            )
        ).all()
        payment_ids = [p.id for p in payment_rows]
        secrets = personal_strings(customer, [*payment_rows, *schedule_templates])

        hold_until: datetime | None = None
        if settings.retention.legal_hold_seconds > 0:
            hold_until = now + timedelta(seconds=settings.retention.legal_hold_seconds)
            sealed = await sealer.seal(
                hold_subject(customer_id),
                json.dumps(_legal_hold_record(customer, payment_rows), sort_keys=True),
            )
            await conn.execute(
                legal_holds.insert().values(
                    customer_id=customer_id,
                    tenant_id=customer.tenant_id,
                    sealed=sealed,
                    hold_until=hold_until,
                )
            )

        await conn.execute(
            update(customers)
            .where(customers.c.id == customer_id)
            .values(
                name=ERASED,
                address=None,
                date_of_birth=None,
                national_id=None,
                tax_id=None,
                registration_number=None,
                kyc_notes=[],
                kyc_review_note=None,
                kyc_reasons=scrub(customer.kyc_reasons, secrets),
                screening_hits=[],
                erased_at=now,
            )
        )
        for payment in payment_rows:
            await erase_payment_details(conn, payment, secrets, now)
        await _scrub_related(conn, customer, payment_ids, secrets)

        # the keys go in this transaction: the erasure and the shredding commit together
        subjects = [customer_id, *payment_ids]
        shredded = (
            await conn.execute(
                payload_data_keys.delete().where(payload_data_keys.c.subject.in_(subjects))
            )
        ).rowcount
        await conn.execute(
            customer_erasures.insert().values(
                customer_id=customer_id,
                tenant_id=customer.tenant_id,
                erased_at=now,
                erased_by=actor,
                reason=reason,
                payments=len(payment_ids),
                keys_shredded=shredded,
                legal_hold_until=hold_until,
            )
        )
        uow.audit(
            actor=actor,
            action="customer.erased",
            subject=customer_id,
            tenant_id=customer.tenant_id,
            # ids and counts only: the chain must never hold what it records erasing
            detail={
                "payments": len(payment_ids),
                "keys_shredded": shredded,
                "legal_hold_until": hold_until.isoformat() if hold_until else None,
            },
            idempotency_key=f"{customer_id}:erased",
        )
    # this process's cached copies go at once; other processes' within the cache's lifetime
    await store.shred(subjects)
    return ErasureReport(
        customer_id, customer.tenant_id, now, len(payment_ids), shredded, hold_until
    )


async def erase_payment_details(
    conn: AsyncConnection, payment: Any, secrets: set[str], now: datetime
) -> None:
    """Blank a payment's personal details (its customer erased, or its retention over):
    the creditor keeps only its country; amounts, ids and statuses stay."""
    creditor = payment.creditor or {}
    await conn.execute(
        update(payments)
        .where(payments.c.id == payment.id)
        .values(
            creditor={"name": ERASED, "country": creditor.get("country", "")},
            remittance_info=None,
            metadata={},
            failure_message=scrub(payment.failure_message, secrets),
            screening_hits=[],
            details_erased_at=now,
        )
    )
    history = (
        await conn.execute(
            select(payment_status_history).where(
                payment_status_history.c.payment_id == payment.id,
                payment_status_history.c.detail.is_not(None),
            )
        )
    ).all()
    for change in history:
        cleaned = scrub(change.detail, secrets)
        if cleaned != change.detail:
            await conn.execute(
                update(payment_status_history)
                .where(
                    payment_status_history.c.payment_id == change.payment_id,
                    payment_status_history.c.seq == change.seq,
                )
                .values(detail=cleaned)
            )


async def _scrub_related(
    conn: AsyncConnection, customer: Any, payment_ids: list[str], secrets: set[str]
) -> None:
    """Events (and their deliveries' errors) and stored idempotency responses that mention
    the customer or its payments. Both are kept days, not years (services/retention.py),
    so a tenant's rows are few enough to read."""
    if not secrets:
        return
    mentions = [customer.id, *payment_ids]
    text = cast(events.c.data, Text)
    found = (
        await conn.execute(
            select(events.c.id, events.c.data).where(
                events.c.tenant_id == customer.tenant_id,
                or_(
                    events.c.payment_id.in_(payment_ids) if payment_ids else false(),
                    text.contains(customer.id),
                ),
            )
        )
    ).all()
    event_ids = []
    for event in found:
        event_ids.append(event.id)
        cleaned = scrub(event.data, secrets)
        if cleaned != event.data:
            await conn.execute(update(events).where(events.c.id == event.id).values(data=cleaned))
    if event_ids:
        deliveries = (
            await conn.execute(
                select(webhook_deliveries).where(
                    webhook_deliveries.c.event_id.in_(event_ids),
                    webhook_deliveries.c.last_error.is_not(None),
                )
            )
        ).all()
        for delivery in deliveries:
            cleaned = scrub(delivery.last_error, secrets)
            if cleaned != delivery.last_error:
                await conn.execute(
                    update(webhook_deliveries)
                    .where(
                        webhook_deliveries.c.event_id == delivery.event_id,
                        webhook_deliveries.c.endpoint_id == delivery.endpoint_id,
                    )
                    .values(last_error=cleaned)
                )
    body = cast(idempotency_keys.c.response_body, Text)
    records = (
        await conn.execute(
            select(idempotency_keys).where(
                idempotency_keys.c.tenant_id == customer.tenant_id,
                or_(*(body.contains(m) for m in mentions)),
            )
        )
    ).all()
    for record in records:
        cleaned = scrub(record.response_body, secrets)
        if cleaned != record.response_body:
            await conn.execute(
                update(idempotency_keys)
                .where(
                    idempotency_keys.c.tenant_id == record.tenant_id,
                    idempotency_keys.c.key == record.key,
                )
                .values(response_body=cleaned)
            )


async def read_legal_hold(
    engine: AsyncEngine, settings: Settings, *, customer_id: str, actor: str, purpose: str
) -> dict[str, Any]:
    """An erased customer's legal hold in clear, for compliance (a regulator's or law
    enforcement's request); every read is audited with who read it and why."""
    async with engine.connect() as conn:
        hold = (
            await conn.execute(select(legal_holds).where(legal_holds.c.customer_id == customer_id))
        ).first()
    if hold is None:
        raise NotFoundError("legal_hold_not_found", f"No legal hold of {customer_id}.")
    opened = await FieldSealer(data_key_store(settings)).open(hold.sealed)
    if opened == ERASED:
        raise NotFoundError("legal_hold_not_found", f"The legal hold of {customer_id} ended.")
    async with UnitOfWork(engine) as uow:
        uow.audit(
            actor=actor,
            action="legal_hold.read",
            subject=customer_id,
            tenant_id=hold.tenant_id,
            # the purpose is a reference (a case number), like an erasure's reason
            detail={"purpose": purpose},
        )
    record: dict[str, Any] = json.loads(opened)
    return record
