"""The codec server: lets the Temporal Web UI show decrypted payloads to authorised ops.

The UI posts `{"payloads": [...]}` (protobuf JSON) to `/codec/decode` (and `/encode`); we
answer with the same shape. Callers authenticate with
- an API key (`Authorization: Bearer psk_…`) with the `ops` scope (its own tenant's payloads)
  or the `platform` scope (any payload);
- in production, the Web UI user's OIDC access token (`Authorization: Bearer <JWT>`, checked
  against the identity provider's keys: api/oidc.py), mapped to a tenant's ops or platform;
- in dev only, a loopback caller (the developer's own browser), as the platform.
A tenant's caller is refused (403 `payload_of_another_tenant`) a batch holding any payload of
another tenant or of the platform's own workflows (kernel/codec.py binds the tenant into each
payload's authenticated data).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from api.deps import (
    AppSettings,
    Engine,
    bearer,
    count_failed_authentication,
    refuse_while_failing,
)
from api.errors import ProblemError
from api.oidc import TokenRefusedError, verify_token
from kernel.api_keys import authenticate
from kernel.codec import ForeignPayloadError, codec_for

router = APIRouter(prefix="/codec", tags=["codec"], include_in_schema=False)


@dataclass(frozen=True)
class CodecCaller:
    """Whose payloads the caller may see: one tenant's, or (None) every one."""

    tenant: str | None


async def authorize(
    request: Request,
    engine: Engine,
    settings: AppSettings,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> CodecCaller:
    """An `ops` or `platform` key, a valid access token, or (dev only) a loopback caller."""
    refuse_while_failing(request)
    if credentials is not None and credentials.credentials.startswith("psk_"):
        async with engine.connect() as conn:
            principal = await authenticate(conn, credentials.credentials)
        if principal is None:
            count_failed_authentication(request)
            raise ProblemError(401, "invalid_api_key", "The API key is invalid or revoked.")
        if "platform" in principal.scopes:
            return CodecCaller(None)
        if "ops" in principal.scopes:
            return CodecCaller(principal.tenant_id)
        raise ProblemError(403, "insufficient_scope", "Decoding payloads needs `ops`.")
    if credentials is not None:
        try:
            holder = await verify_token(settings.codec, credentials.credentials)
        except TokenRefusedError as refused:
            count_failed_authentication(request)
            raise ProblemError(401, "invalid_access_token", str(refused)) from None
        return CodecCaller(holder.tenant)
    host = request.client.host if request.client else ""
    if settings.codec.allow_loopback and host and ipaddress.ip_address(host).is_loopback:
        return CodecCaller(None)
    count_failed_authentication(request)
    raise ProblemError(
        401, "unauthenticated", "Send an ops API key or an access token as `Authorization: Bearer`."
    )


Caller = Annotated[CodecCaller, Depends(authorize)]


async def _read(request: Request) -> Payloads:
    try:
        return json_format.Parse(await request.body(), Payloads())
    except json_format.ParseError as err:
        raise ProblemError(400, "invalid_payloads", f"Not a Payloads document: {err}") from err


def _answer(payloads: Payloads) -> Response:
    return Response(json_format.MessageToJson(payloads), media_type="application/json")


@router.post("/decode")
async def decode(request: Request, settings: AppSettings, caller: Caller) -> Response:
    """Decrypt payloads for display: the caller's tenant's only, unless it is the platform."""
    payloads = await _read(request)
    try:
        result = await codec_for(settings).decode_for(list(payloads.payloads), caller.tenant)
    except ForeignPayloadError as err:
        raise ProblemError(
            403, "payload_of_another_tenant", f"Not decoded: {err}; ask a platform operator."
        ) from err
    except ValueError as err:  # unknown key id, or a payload that fails authentication
        raise ProblemError(422, "undecodable_payload", str(err)) from err
    return _answer(Payloads(payloads=result))


@router.post("/encode")
async def encode(request: Request, settings: AppSettings, _: Caller) -> Response:
    """Encrypt payloads (the UI uses it to send signals with encrypted arguments)."""
    payloads = await _read(request)
    result = await codec_for(settings).encode(list(payloads.payloads))
    return _answer(Payloads(payloads=result))
