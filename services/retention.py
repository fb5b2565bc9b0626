"""Retention (issues #23, #17): idempotency records expire after a day, events and their
webhook deliveries after 30 days; `payments purge` and the maintenance activity delete them.
The personal details of a payment closed longer than `retention.payment_details_seconds`
(5 years, for AML) are erased and its payloads' data key shredded (services/erasure.py), and
legal holds of erased customers are shredded when they end.

Deletion goes in bounded batches, oldest first, through an index on the creation time
(migrations 0013, 0014), each batch its own short transaction, so a purge never scans a
table nor holds locks for long, and a purge interrupted half-way simply continues next time.
Events are partitioned by month (migration 0022): a month entirely past retention is dropped
whole (its deliveries deleted first, in batches by event id: they are not partitioned), so
expired events cost no row deletes, no dead rows and no vacuum; only the month the cutoff
falls in is deleted row by row.

A payment's (and a deposit's) id derives from its tenant and Idempotency-Key, so a key
reused after its record expired names the existing object: `refuse_expired_key` answers
that with `idempotency_key_expired` (409) instead of replaying an answer nobody kept or
making a second object.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Delete, Select, column, delete, select, table, text, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.codec import data_key_store
from kernel.settings import Settings
from kernel.tables import (
    events,
    idempotency_keys,
    legal_holds,
    payload_data_keys,
    payments,
    webhook_deliveries,
)
from services.erasure import erase_payment_details, hold_subject, personal_strings
from services.errors import ConflictError
from services.partitions import add_months, live_partitions
from workflows.models import TERMINAL_STATUSES


def refuse_expired_key(created_at: datetime, object_id: str, retention_seconds: float) -> None:
    """Refuse a request whose Idempotency-Key names `object_id`, made longer ago than the
    key's records are kept: its record has expired (or is about to), so this is a new
    request reusing an old key, not a retry of the first. A younger object is a retry
    after a crash (the record was taken over or released) and is answered as usual."""
    if created_at < datetime.now(UTC) - timedelta(seconds=retention_seconds):
        raise ConflictError(
            "idempotency_key_expired",
            f"This Idempotency-Key made {object_id} more than {retention_seconds:.0f} s ago "
            "and its record has expired; a key never makes a second object. Read "
            f"{object_id} for its state, or use a new key for a new request.",
        )


# The purge's reads: the oldest expired rows, a batch at a time, through the creation-time
# indexes (tests/integration/test_query_plans.py checks their plans).


def expired_keys_query(cutoff: datetime, limit: int) -> Select[Any]:
    """The oldest `limit` idempotency records created before `cutoff`."""
    return (
        select(idempotency_keys.c.tenant_id, idempotency_keys.c.key)
        .where(idempotency_keys.c.created_at < cutoff)
        .order_by(idempotency_keys.c.created_at)
        .limit(limit)
    )


def expired_events_query(cutoff: datetime, limit: int) -> Select[Any]:
    """The oldest `limit` events created before `cutoff`."""
    return (
        select(events.c.id)
        .where(events.c.created_at < cutoff)
        .order_by(events.c.created_at)
        .limit(limit)
    )


def month_events_query(partition: str, after: str, limit: int) -> Select[Any]:
    """The next `limit` event ids of one month's partition after `after` (its key's order)."""
    month = table(partition, column("id"))
    return select(month.c.id).where(month.c.id > after).order_by(month.c.id).limit(limit)


def deliveries_of_statement(event_ids: list[str]) -> Delete:
    """Delete the webhook deliveries of these events (the primary key leads with the event)."""
    return delete(webhook_deliveries).where(webhook_deliveries.c.event_id.in_(event_ids))


def due_payment_details_query(cutoff: datetime, limit: int) -> Select[Any]:
    """The oldest `limit` payments closed before `cutoff` whose details are still there
    (the partial index of migration 0020: erased ones leave it)."""
    return (
        select(payments)
        .where(
            payments.c.details_erased_at.is_(None),
            # the index's own list, in its order (migration 0020)
            payments.c.status.in_(sorted(str(s) for s in TERMINAL_STATUSES)),
            payments.c.updated_at < cutoff,
        )
        .order_by(payments.c.updated_at)
        .limit(limit)
    )


def ended_holds_query(now: datetime, limit: int) -> Select[Any]:
    """The oldest `limit` legal holds that have ended."""
    return (
        select(legal_holds.c.customer_id)
        .where(legal_holds.c.hold_until < now)
        .order_by(legal_holds.c.hold_until)
        .limit(limit)
    )


@dataclass
class PurgeReport:
    """Rows deleted (or, for payment details, erased) per table."""

    idempotency_keys: int = 0
    events: int = 0
    webhook_deliveries: int = 0
    payment_details: int = 0
    legal_holds: int = 0

    def as_dict(self) -> dict[str, int]:
        """Counts by table name (the activity's result, the CLI's output)."""
        return {
            "idempotency_keys": self.idempotency_keys,
            "events": self.events,
            "webhook_deliveries": self.webhook_deliveries,
            "payment_details": self.payment_details,
            "legal_holds": self.legal_holds,
        }


async def _purge_keys(engine: AsyncEngine, cutoff: datetime, batch: int) -> int:
    deleted = 0
    while True:
        async with engine.begin() as conn:
            doomed = expired_keys_query(cutoff, batch).with_for_update(skip_locked=True)
            keys = [tuple(row) for row in await conn.execute(doomed)]
            if keys:
                await conn.execute(
                    delete(idempotency_keys).where(
                        tuple_(idempotency_keys.c.tenant_id, idempotency_keys.c.key).in_(keys)
                    )
                )
        deleted += len(keys)
        if len(keys) < batch:
            return deleted


async def _drop_expired_months(
    engine: AsyncEngine, cutoff: datetime, batch: int
) -> tuple[int, int]:
    """Drop every month of events that ended before `cutoff`, oldest first, after deleting
    its events' deliveries; answers the events and deliveries removed."""
    dropped = deliveries = 0
    async with engine.connect() as conn:
        months = await live_partitions(conn, "events")
    for month in months:
        end = add_months(month.month, 1)
        if datetime(end.year, end.month, 1, tzinfo=UTC) > cutoff:
            break
        after = ""
        while True:
            async with engine.begin() as conn:
                page = month_events_query(month.name, after, batch)
                ids = [row.id for row in await conn.execute(page)]
                if ids:
                    deliveries += (await conn.execute(deliveries_of_statement(ids))).rowcount
            dropped += len(ids)
            if len(ids) < batch:
                break
            after = ids[-1]
        async with engine.begin() as conn:
            # as archiving does: a short wait for the table's lock, else the next purge
            await conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            await conn.execute(text(f"ALTER TABLE events DETACH PARTITION {month.name}"))
            await conn.execute(text(f"DROP TABLE {month.name}"))
    return dropped, deliveries


async def _purge_events(engine: AsyncEngine, cutoff: datetime, batch: int) -> tuple[int, int]:
    purged, deliveries = await _drop_expired_months(engine, cutoff, batch)
    while True:
        async with engine.begin() as conn:
            doomed = expired_events_query(cutoff, batch).with_for_update(skip_locked=True)
            ids = [row.id for row in await conn.execute(doomed)]
            if ids:
                # the deliveries first: they reference their event
                deliveries += (await conn.execute(deliveries_of_statement(ids))).rowcount
                await conn.execute(delete(events).where(events.c.id.in_(ids)))
        purged += len(ids)
        if len(ids) < batch:
            return purged, deliveries


async def _purge_payment_details(
    engine: AsyncEngine, settings: Settings, cutoff: datetime, now: datetime
) -> int:
    """Erase the details of payments closed before `cutoff` and shred their payloads' keys."""
    batch = settings.retention.purge_batch_size
    erased = 0
    while True:
        async with engine.begin() as conn:
            doomed = due_payment_details_query(cutoff, batch).with_for_update(skip_locked=True)
            rows = (await conn.execute(doomed)).all()
            for row in rows:
                # only the payment's own values: its customer may still be a customer
                await erase_payment_details(conn, row, personal_strings(None, [row]), now)
            ids = [row.id for row in rows]
            if ids:
                await conn.execute(
                    delete(payload_data_keys).where(payload_data_keys.c.subject.in_(ids))
                )
        await data_key_store(settings).shred(ids)
        erased += len(ids)
        if len(ids) < batch:
            return erased


async def purge_ended_holds(engine: AsyncEngine, settings: Settings, now: datetime) -> int:
    """Shred the legal holds that have ended (the hold row and its key)."""
    batch = settings.retention.purge_batch_size
    ended = 0
    while True:
        async with engine.begin() as conn:
            doomed = ended_holds_query(now, batch).with_for_update(skip_locked=True)
            ids = [row.customer_id for row in await conn.execute(doomed)]
            if ids:
                await conn.execute(delete(legal_holds).where(legal_holds.c.customer_id.in_(ids)))
                await conn.execute(
                    delete(payload_data_keys).where(
                        payload_data_keys.c.subject.in_([hold_subject(i) for i in ids])
                    )
                )
        await data_key_store(settings).shred([hold_subject(i) for i in ids])
        ended += len(ids)
        if len(ids) < batch:
            return ended


async def purge_expired(
    engine: AsyncEngine, settings: Settings, *, now: datetime | None = None
) -> PurgeReport:
    """Delete every idempotency record, event and webhook delivery past its retention;
    erase closed payments' details past theirs; shred ended legal holds."""
    now = now or datetime.now(UTC)
    batch = settings.retention.purge_batch_size
    report = PurgeReport()
    report.idempotency_keys = await _purge_keys(
        engine, now - timedelta(seconds=settings.retention.idempotency_seconds), batch
    )
    report.events, report.webhook_deliveries = await _purge_events(
        engine, now - timedelta(seconds=settings.retention.event_seconds), batch
    )
    report.payment_details = await _purge_payment_details(
        engine,
        settings,
        now - timedelta(seconds=settings.retention.payment_details_seconds),
        now,
    )
    report.legal_holds = await purge_ended_holds(engine, settings, now)
    return report
