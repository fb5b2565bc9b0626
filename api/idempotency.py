"""Idempotency-Key handling for POSTs that create things or move money (DESIGN §7).

The key is claimed in PostgreSQL per (tenant, key) with a fingerprint of the request before
any work starts; the finished response is stored and replayed for the same key and body.

A handler that moves money in one transaction (a deposit) stores its answer in that same
transaction (`answer_in`): the record then says "done" exactly when the money moved, so a
failure after the commit never releases the key and a retry replays the answer instead of
running again. A claim is only ever released while it is unanswered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Select, Update, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.errors import ProblemError
from kernel.api_keys import Principal
from kernel.db import autocommit
from kernel.outages import dependency_unavailable
from kernel.tables import idempotency_keys

MAX_KEY_LENGTH = 255

# the answer to a repeated request says it is a replay (documented on the success response)
REPLAYED_HEADER = {
    "Idempotent-Replayed": {
        "description": "`true` when this answer replays the first request with the same key.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def replayable(status: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entry declaring the replay header on the success status."""
    return {status: {"headers": REPLAYED_HEADER}}


# Required in the OpenAPI document (DESIGN §7); api.errors answers its absence with 400
# `idempotency_key_missing` and a key over MAX_KEY_LENGTH with 400 `idempotency_key_invalid`.
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        description=(
            "A key unique to this request (e.g. a UUID): the same key with the same body "
            "replays the first answer (`Idempotent-Replayed: true`); with another body it "
            "answers 422 `idempotency_key_reused`; while the first is in flight, 409."
        ),
        examples=["8e03978e-40d5-43e8-bc93-6894a57f9324"],
    ),
]


def _fingerprint(method_path: str, body: BaseModel) -> str:
    payload = method_path.encode() + b"\n" + body.model_dump_json().encode()
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True)
class IdempotencyClaim:
    """The record a request claims: what `answer_in` writes its answer to."""

    tenant_id: str
    key: str
    method_path: str
    fingerprint: str

    @classmethod
    def of(cls, tenant_id: str, key: str, method_path: str, body: BaseModel) -> IdempotencyClaim:
        """The claim of this request (the same fingerprint `run_idempotently` computes)."""
        return cls(tenant_id, key, method_path, _fingerprint(method_path, body))


async def answer_in(
    conn: AsyncConnection, claim: IdempotencyClaim, status: int, response: dict[str, Any]
) -> None:
    """Store the answer in the caller's transaction, the one that makes the change.

    An upsert, not an update: should the claim have been released meanwhile (a takeover
    that then failed), the change must still commit with its record, or a later request
    with the key would run again instead of replaying.
    """
    await conn.execute(
        insert(idempotency_keys)
        .values(
            tenant_id=claim.tenant_id,
            key=claim.key,
            method_path=claim.method_path,
            fingerprint=claim.fingerprint,
            response_status=status,
            response_body=response,
        )
        .on_conflict_do_update(
            index_elements=[idempotency_keys.c.tenant_id, idempotency_keys.c.key],
            set_={
                "fingerprint": claim.fingerprint,
                "response_status": status,
                "response_body": response,
            },
        )
    )


# The key's reads and takeover (tests/integration/test_query_plans.py checks their plans).


def key_query(tenant_id: str, key: str) -> Select[Any]:
    """The tenant's record of `key`."""
    return select(idempotency_keys).where(
        idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.key == key
    )


def takeover_statement(tenant_id: str, key: str, fingerprint: str, takeover_after: float) -> Update:
    """Claim the tenant's record of `key` for the same request if its first run never
    finished within `takeover_after` seconds; returns the key when it did."""
    return (
        update(idempotency_keys)
        .where(
            idempotency_keys.c.tenant_id == tenant_id,
            idempotency_keys.c.key == key,
            idempotency_keys.c.fingerprint == fingerprint,
            idempotency_keys.c.response_status.is_(None),
            idempotency_keys.c.created_at < func.now() - timedelta(seconds=takeover_after),
        )
        .values(created_at=func.now())
        .returning(idempotency_keys.c.key)
    )


async def run_idempotently(
    engine: AsyncEngine,
    principal: Principal,
    key: str | None,
    method_path: str,
    body: BaseModel,
    handler: Callable[[], Awaitable[tuple[int, dict[str, Any]]]],
    *,
    takeover_after: float = 60.0,
    on_replay: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    answered_by_handler: bool = False,
) -> JSONResponse:
    """Run `handler` once per (tenant, key); replay its response for repeats.

    `answered_by_handler`: every answer `handler` returns was stored in its own transaction
    (`answer_in`), so nothing is left to write after it (one transaction less).

    `on_replay` runs before a stored answer is replayed: a handler that answered in its own
    transaction (`answer_in`) is never re-run, so what it does after its commit (start
    webhook deliveries) must be redone there, in case its process died in between.

    A first request that never finished (its API process died) is taken over after
    `takeover_after` seconds, so a key cannot stay stuck at 409; handlers are written to be
    re-run safely (derived ids, idempotent inserts, workflow id conflict policy).
    """
    if not key:
        raise ProblemError(
            400, "idempotency_key_missing", "This request needs an `Idempotency-Key` header."
        )
    if len(key) > MAX_KEY_LENGTH:
        raise ProblemError(400, "idempotency_key_invalid", "Idempotency-Key is too long.")
    fingerprint = _fingerprint(method_path, body)
    where = (idempotency_keys.c.tenant_id == principal.tenant_id, idempotency_keys.c.key == key)
    # each statement commits by itself (no BEGIN and COMMIT round trips): the claim is one
    # insert; the takeover and the read only follow when the key was there already, and
    # each is atomic on its own, as they were inside one READ COMMITTED transaction
    async with autocommit(engine) as conn:
        claimed = (
            await conn.execute(
                insert(idempotency_keys)
                .values(
                    tenant_id=principal.tenant_id,
                    key=key,
                    method_path=method_path,
                    fingerprint=fingerprint,
                )
                .on_conflict_do_nothing()
                .returning(idempotency_keys.c.key)
            )
        ).first()
        if claimed is None:
            claimed = (
                await conn.execute(
                    takeover_statement(principal.tenant_id, key, fingerprint, takeover_after)
                )
            ).first()
        if claimed is None:
            row = (await conn.execute(key_query(principal.tenant_id, key))).one()
    if claimed is None:
        if row.fingerprint != fingerprint:
            raise ProblemError(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request.",
            )
        if row.response_status is None:
            raise ProblemError(
                409, "idempotency_request_in_progress", "The first request is still in flight."
            )
        if on_replay is not None:
            await on_replay(row.response_body)
        return JSONResponse(
            row.response_body,
            status_code=row.response_status,
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        status, response = await handler()
    except BaseException as failure:
        unanswered = (*where, idempotency_keys.c.response_status.is_(None))
        async with engine.begin() as conn:
            if dependency_unavailable(failure):
                # Temporal or PostgreSQL is down (503): the key stays bound to this request,
                # free at once for the same body and refused (422) for another. A start that
                # timed out may have reached Temporal; the retry joins that workflow, and a
                # different body must never be joined to it under the same payment id.
                await conn.execute(
                    update(idempotency_keys)
                    .where(*unanswered)
                    .values(created_at=func.now() - timedelta(seconds=takeover_after + 1))
                )
            else:
                # release the key so the client can retry with it, unless the handler's own
                # transaction answered it: then its change committed, and a retry must
                # replay it
                await conn.execute(delete(idempotency_keys).where(*unanswered))
        raise
    if answered_by_handler:
        return JSONResponse(response, status_code=status)
    async with autocommit(engine) as conn:
        # a handler that answered in its own transaction (answer_in) left nothing to store
        await conn.execute(
            update(idempotency_keys)
            .where(*where, idempotency_keys.c.response_status.is_(None))
            .values(response_status=status, response_body=response)
        )
    return JSONResponse(response, status_code=status)
