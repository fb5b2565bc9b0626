"""Request dependencies: the database engine, the Temporal client, the calling principal."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from api.errors import ProblemError
from api.limits import RateLimiter, retry_after_header, take_or_refuse
from kernel.api_keys import Principal, authenticate
from kernel.db import autocommit
from kernel.settings import Settings

# The dependencies are `async def` although they await nothing: FastAPI runs a plain `def`
# dependency in a worker thread, a thread hop per dependency and request.


async def get_engine(request: Request) -> AsyncEngine:
    """The process's database engine (created in the app's lifespan)."""
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_temporal(request: Request) -> Client:
    """The process's Temporal client (one per process, created in the lifespan)."""
    client: Client = request.app.state.temporal
    return client


async def get_app_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


Engine = Annotated[AsyncEngine, Depends(get_engine)]
Temporal = Annotated[Client, Depends(get_temporal)]
AppSettings = Annotated[Settings, Depends(get_app_settings)]


# documents the scheme in OpenAPI (the /docs "Authorize" button); we raise our own problems
bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer psk_…`")


def _failures(request: Request) -> tuple[RateLimiter, str]:
    limiter: RateLimiter = request.app.state.auth_failure_limiter
    return limiter, request.client.host if request.client else "unknown"


def refuse_while_failing(request: Request) -> None:
    """429 for a source address that used up its failed authentications (any key it sends)."""
    limiter, source = _failures(request)
    wait = limiter.peek(source)
    if wait is not None:
        raise ProblemError(
            429,
            "rate_limited",
            "Too many failed authentications from this address; slow down.",
            headers={"Retry-After": retry_after_header(wait)},
        )


def count_failed_authentication(request: Request) -> None:
    """One failed authentication against the request's source address."""
    limiter, source = _failures(request)
    limiter.check(source, None)


async def get_principal(
    request: Request,
    engine: Engine,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Authenticate the bearer API key; a source address with too many failures is refused
    (429) before its key is even looked at."""
    refuse_while_failing(request)
    if credentials is None or credentials.scheme.lower() != "bearer":
        count_failed_authentication(request)
        raise ProblemError(401, "unauthenticated", "Send an API key as `Authorization: Bearer`.")
    async with autocommit(engine) as conn:  # one read: no BEGIN, no ROLLBACK
        principal = await authenticate(conn, credentials.credentials.strip())
    if principal is None:
        count_failed_authentication(request)
        raise ProblemError(401, "invalid_api_key", "The API key is invalid or revoked.")
    # every log line of this request names who made it
    structlog.contextvars.bind_contextvars(
        tenant_id=principal.tenant_id, principal=principal.name, key_id=principal.key_id
    )
    limiter: RateLimiter = request.app.state.rate_limiter
    take_or_refuse(limiter, principal.key_id, principal.rate_limit_per_second, "requests")
    return principal


def require(scope: str) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency that authenticates and demands `scope`."""

    async def dependency(
        principal: Annotated[Principal, Depends(get_principal)],
    ) -> Principal:
        if scope not in principal.scopes:
            raise ProblemError(403, "insufficient_scope", f"This key lacks the `{scope}` scope.")
        return principal

    return dependency


Reader = Annotated[Principal, Depends(require("payments:read"))]
Writer = Annotated[Principal, Depends(require("payments:write"))]
Ops = Annotated[Principal, Depends(require("ops"))]
# cross-tenant work: a tenant's `ops` key is refused it (403 insufficient_scope)
Platform = Annotated[Principal, Depends(require("platform"))]
