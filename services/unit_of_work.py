"""`UnitOfWork`: a state change, its events, their webhook deliveries and its audit record.

One transaction, one order, wherever the four occur:

1. the caller makes its state change on `uow.conn` (inside `async with UnitOfWork(...)`);
2. `await uow.event(...)` writes each event in that transaction and looks up the tenant's
   enabled webhook endpoints that receive its type (what to deliver is decided with the
   change);
3. `uow.audit(...)` queues the audit record; on leaving the block the records are appended
   to the hash chain last, just before the commit (the chain's lock is held only while the
   transaction commits), so a record commits with the change it describes, never after it
   and never without it;
4. after the commit, one delivery workflow per (event, endpoint) is started.

Any exception inside the block, or a failing audit append, rolls everything back: no
change, no event, no audit record, no delivery.

Deliveries are durable the way they were before this module: their workflow ids derive from
(event id, endpoint id), so starting them again is harmless, and every caller re-runs the
whole unit on failure (an activity is retried by Temporal; an API request is retried by its
client under the same Idempotency-Key, whose derived ids make the re-run write nothing new
and restart the same deliveries). A crash between the commit and the start is healed by that
re-run; it is not swept up by the database alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from kernel import audit
from services.events import DeliveryStarter, event_insert, insert_event_for_endpoints


@dataclass(frozen=True)
class AuditRecord:
    """A decision to append to the audit chain with the change it records."""

    actor: str
    action: str
    subject: str | None
    tenant_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    # no record with this key is older than this (the log is partitioned by month: the
    # probe for the key then reads from there on, not every month)
    not_before: datetime | None = None


class UnitOfWork:
    """One transaction for a state change, its events, deliveries and audit records.

    Usage::

        async with UnitOfWork(engine, deliveries) as uow:
            await uow.conn.execute(...)            # the change
            await uow.event(event_id=..., ...)     # its event(s)
            uow.audit(actor=..., action=..., subject=...)
        # committed; deliveries started
    """

    def __init__(self, engine: AsyncEngine, deliveries: DeliveryStarter | None = None) -> None:
        self._engine = engine
        self._deliveries = deliveries
        self._conn: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None
        self._audits: list[AuditRecord] = []
        self._pending: list[tuple[str, list[str]]] = []
        # per (tenant, event type): one look-up per unit
        self._endpoints: dict[tuple[str, str], list[str]] = {}
        self.committed = False

    @property
    def conn(self) -> AsyncConnection:
        """The connection whose transaction holds the unit (only inside the block)."""
        if self._conn is None:
            raise RuntimeError("the unit of work is not open")
        return self._conn

    async def __aenter__(self) -> UnitOfWork:
        self._conn = await self._engine.connect()
        self._transaction = await self._conn.begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, transaction = self.conn, self._transaction
        assert transaction is not None
        try:
            if exc_type is None:
                # tenants' chains before the platform's, each chain's records in the order
                # they were added: every transaction takes chain locks in one order, so two
                # of them never wait on each other's (a deadlock)
                for record in sorted(
                    self._audits, key=lambda r: (r.tenant_id is None, r.tenant_id or "")
                ):
                    await audit.append_in(
                        conn,
                        actor=record.actor,
                        action=record.action,
                        subject=record.subject,
                        tenant_id=record.tenant_id,
                        detail=record.detail,
                        idempotency_key=record.idempotency_key,
                        not_before=record.not_before,
                    )
                await transaction.commit()
                self.committed = True
        finally:
            if not self.committed:
                await transaction.rollback()
            await conn.close()
            self._conn = None
        if self.committed and self._deliveries is not None:
            for event_id, endpoint_ids in self._pending:
                await self._deliveries.start(event_id, endpoint_ids)

    async def event(
        self,
        *,
        event_id: str,
        tenant_id: str,
        type: str,
        data: dict[str, Any],
        at: datetime,
        payment_id: str | None = None,
    ) -> str:
        """Write an event with the change (idempotent on its id) and plan its deliveries to
        the tenant's enabled endpoints; returns the event id."""
        if self._deliveries is None:
            # an event nobody would deliver is a silent loss: refuse it at the first test run
            raise RuntimeError("a unit of work that writes events needs a DeliveryStarter")
        written = event_insert(
            event_id=event_id,
            tenant_id=tenant_id,
            type=type,
            data=data,
            at=at,
            payment_id=payment_id,
        )
        audience = (tenant_id, type)
        if audience in self._endpoints:
            await self.conn.execute(written)
        else:  # the event and its audience in one round trip
            self._endpoints[audience] = await insert_event_for_endpoints(
                self.conn, written, tenant_id, type
            )
        if self._endpoints[audience]:
            self._pending.append((event_id, self._endpoints[audience]))
        return event_id

    def audit(
        self,
        *,
        actor: str,
        action: str,
        subject: str | None,
        tenant_id: str | None = None,
        detail: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        not_before: datetime | None = None,
    ) -> None:
        """Queue an audit record; it is appended to the chain just before the commit (a
        repeated idempotency key appends nothing; `not_before`: see `audit.append_in`)."""
        self._audits.append(
            AuditRecord(
                actor, action, subject, tenant_id, detail or {}, idempotency_key, not_before
            )
        )
