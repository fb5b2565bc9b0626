"""API keys: high-entropy secrets stored only as hashes, looked up by a short prefix.

A key reads `psk_<prefix>_<secret>`. Only SHA-256(secret) is stored: the secret has 256 bits
of entropy, so a fast hash is enough (a slow password hash protects low-entropy secrets).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kernel.ids import new_id
from kernel.tables import api_keys, tenants

# `ops` acts on its own tenant (reviews, retries, cancels, erasure, its own payloads);
# `platform` on the platform's own business across tenants (deposits into any account,
# reconciliation of the bank accounts, any tenant's payloads in the codec server)
SCOPES = frozenset({"payments:write", "payments:read", "ops", "platform"})


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant, the named person or system, and what they may do."""

    tenant_id: str
    name: str
    scopes: frozenset[str]
    key_id: str
    rate_limit_per_second: int | None = None


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never its secret."""

    id: str
    tenant_id: str
    principal: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def ensure_tenant(conn: AsyncConnection, tenant_id: str, name: str | None = None) -> None:
    """Create the tenant if it does not exist yet."""
    await conn.execute(
        insert(tenants).values(id=tenant_id, name=name or tenant_id).on_conflict_do_nothing()
    )


async def create_key(
    conn: AsyncConnection,
    *,
    tenant_id: str,
    principal: str,
    scopes: list[str],
    rate_limit_per_second: int | None = None,
) -> str:
    """Create a key and return it in full (the only time it is ever visible)."""
    unknown = set(scopes) - SCOPES
    if unknown or not scopes:
        raise ValueError(f"scopes must be a non-empty subset of {sorted(SCOPES)}")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    await conn.execute(
        api_keys.insert().values(
            id=new_id("key"),
            tenant_id=tenant_id,
            principal=principal,
            prefix=prefix,
            secret_hash=_hash(secret),
            scopes=sorted(set(scopes)),
            rate_limit_per_second=rate_limit_per_second,
        )
    )
    return f"psk_{prefix}_{secret}"


async def authenticate(conn: AsyncConnection, presented: str) -> Principal | None:
    """Return the principal of a valid, unrevoked key, else None."""
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != "psk":
        return None
    _, prefix, secret = parts
    row = (await conn.execute(select(api_keys).where(api_keys.c.prefix == prefix))).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.secret_hash, _hash(secret)):
        return None
    return Principal(
        row.tenant_id, row.principal, frozenset(row.scopes), row.id, row.rate_limit_per_second
    )


async def list_keys(conn: AsyncConnection, tenant_id: str) -> list[KeyInfo]:
    """The tenant's keys, oldest first, revoked ones included."""
    rows = (
        await conn.execute(
            select(api_keys).where(api_keys.c.tenant_id == tenant_id).order_by(api_keys.c.id)
        )
    ).all()
    return [
        KeyInfo(
            r.id, r.tenant_id, r.principal, r.prefix, list(r.scopes), r.created_at, r.revoked_at
        )
        for r in rows
    ]


async def revoke_key(conn: AsyncConnection, key_id: str) -> bool:
    """Revoke a key at once; False if there is no such unrevoked key."""
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(api_keys.c.id)
    )
    return result.first() is not None
