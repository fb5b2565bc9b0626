"""Containing a leaked or compromised credential (docs/runbooks/breach-*.md): API keys
rotated or revoked by key, principal or whole tenant, and webhook secrets rotated by ops.

Every change commits with its audit record (who, what, which key or endpoint; never a
secret), so the auditor can read what an incident's containment did and when.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from kernel.api_keys import create_key
from kernel.settings import Settings
from kernel.tables import api_keys, webhook_endpoints
from services.errors import NotFoundError
from services.unit_of_work import UnitOfWork
from services.webhook_endpoints import rotate_secret


@dataclass(frozen=True)
class RotatedKey:
    """The replacement of a key: its id and the full key (shown this once)."""

    old_key_id: str
    new_key_id: str
    key: str


async def rotate_api_key(engine: AsyncEngine, key_id: str, *, actor: str) -> RotatedKey:
    """A new key for the same tenant, principal, scopes and rate limit as `key_id`.

    The old key stays valid (the overlap) until `revoke_api_keys` ends it, once the partner
    has switched: rotating never locks out a partner in the middle of its traffic.
    NotFoundError if there is no such unrevoked key.
    """
    async with UnitOfWork(engine) as uow:
        old = (
            await uow.conn.execute(
                select(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            )
        ).first()
        if old is None:
            raise NotFoundError("api_key_not_found", f"No active API key {key_id}.")
        key = await create_key(
            uow.conn,
            tenant_id=old.tenant_id,
            principal=old.principal,
            scopes=list(old.scopes),
            rate_limit_per_second=old.rate_limit_per_second,
        )
        prefix = key.split("_", 2)[1]
        new_id = (
            await uow.conn.execute(select(api_keys.c.id).where(api_keys.c.prefix == prefix))
        ).scalar_one()
        uow.audit(
            actor=actor,
            action="api_key.rotated",
            subject=key_id,
            detail={"replacement": new_id, "principal": old.principal},
            tenant_id=old.tenant_id,
        )
    return RotatedKey(key_id, new_id, key)


async def revoke_api_keys(
    engine: AsyncEngine,
    *,
    actor: str,
    key_id: str | None = None,
    tenant_id: str | None = None,
    principal: str | None = None,
    reason: str | None = None,
) -> list[str]:
    """Revoke at once one key (`key_id`), every key of a principal (`tenant_id` and
    `principal`: disabling the principal), or every key of a tenant (`tenant_id` alone);
    returns the ids revoked, each audited. Keys already revoked are left as they are."""
    if key_id is None and tenant_id is None:
        raise ValueError("name a key, or a tenant (and a principal)")
    if principal is not None and tenant_id is None:
        # a principal is a name within its tenant: the same name elsewhere is someone else
        raise ValueError("a principal is named within its tenant")
    conditions: list[ColumnElement[bool]] = [api_keys.c.revoked_at.is_(None)]
    if key_id is not None:
        conditions.append(api_keys.c.id == key_id)
    if tenant_id is not None:
        conditions.append(api_keys.c.tenant_id == tenant_id)
    if principal is not None:
        conditions.append(api_keys.c.principal == principal)
    async with UnitOfWork(engine) as uow:
        rows = (
            await uow.conn.execute(
                update(api_keys)
                .where(*conditions)
                .values(revoked_at=func.now())
                .returning(api_keys.c.id, api_keys.c.tenant_id, api_keys.c.principal)
            )
        ).all()
        for row in sorted(rows):
            uow.audit(
                actor=actor,
                action="api_key.revoked",
                subject=row.id,
                detail={"principal": row.principal, "reason": reason},
                tenant_id=row.tenant_id,
            )
    return sorted(row.id for row in rows)


async def list_endpoints(engine: AsyncEngine, tenant_id: str) -> list[Any]:
    """A tenant's webhook endpoints, oldest first (never their secrets)."""
    columns = [c for c in webhook_endpoints.c if c.name not in ("secret", "previous_secret")]
    async with engine.connect() as conn:
        return list(
            (
                await conn.execute(
                    select(*columns)
                    .where(webhook_endpoints.c.tenant_id == tenant_id)
                    .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
                )
            ).all()
        )


async def rotate_endpoint_secret(
    engine: AsyncEngine,
    settings: Settings,
    *,
    tenant_id: str,
    endpoint_id: str,
    overlap_seconds: float | None,
    actor: str,
) -> Any:
    """What `POST /v1/webhook-endpoints/{id}/rotate-secret` does, for ops: a new secret
    (in the returned row), the old one still signed with for the overlap."""
    async with UnitOfWork(engine) as uow:
        row = await rotate_secret(
            uow.conn,
            settings,
            tenant_id=tenant_id,
            endpoint_id=endpoint_id,
            overlap_seconds=overlap_seconds,
        )
        uow.audit(
            actor=actor,
            action="webhook_endpoint.secret_rotated",
            subject=endpoint_id,
            detail={"previous_secret_expires_at": row.previous_secret_expires_at},
            tenant_id=tenant_id,
        )
    return row


async def end_secret_overlap(
    engine: AsyncEngine, *, tenant_id: str, endpoint_id: str, actor: str
) -> None:
    """Stop signing with the endpoint's previous secret now (the overlap of a rotation ends
    early: the partner has switched, or the previous secret leaked)."""
    async with UnitOfWork(engine) as uow:
        found = (
            await uow.conn.execute(
                update(webhook_endpoints)
                .where(
                    webhook_endpoints.c.id == endpoint_id,
                    webhook_endpoints.c.tenant_id == tenant_id,
                )
                .values(previous_secret=None, previous_secret_expires_at=None)
                .returning(webhook_endpoints.c.id)
            )
        ).first()
        if found is None:
            raise NotFoundError("webhook_endpoint_not_found", f"No webhook endpoint {endpoint_id}.")
        uow.audit(
            actor=actor,
            action="webhook_endpoint.previous_secret_ended",
            subject=endpoint_id,
            tenant_id=tenant_id,
        )


async def disable_endpoint(
    engine: AsyncEngine, *, tenant_id: str, endpoint_id: str, actor: str
) -> bool:
    """Stop every delivery to the endpoint (an endpoint an intruder registered); False if
    it was disabled already."""
    async with UnitOfWork(engine) as uow:
        found = (
            await uow.conn.execute(
                update(webhook_endpoints)
                .where(
                    webhook_endpoints.c.id == endpoint_id,
                    webhook_endpoints.c.tenant_id == tenant_id,
                    webhook_endpoints.c.disabled_at.is_(None),
                )
                .values(disabled_at=func.now())
                .returning(webhook_endpoints.c.id)
            )
        ).first()
        if found is not None:
            uow.audit(
                actor=actor,
                action="webhook_endpoint.disabled",
                subject=endpoint_id,
                tenant_id=tenant_id,
            )
    return found is not None
