"""The codec server: lets the Temporal Web UI show decrypted payloads to authorised ops.

The UI posts `{"payloads": [...]}` (protobuf JSON) to `/codec/decode` (and `/encode`); we
answer with the same shape. Ops authenticate with an API key carrying the `ops` scope; the
dev stack may also allow loopback callers, since its UI runs in the developer's own browser.
"""

from __future__ import annotations

import ipaddress
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
from kernel.api_keys import authenticate
from kernel.codec import codec_for

router = APIRouter(prefix="/codec", tags=["codec"], include_in_schema=False)


async def authorize_ops(
    request: Request,
    engine: Engine,
    settings: AppSettings,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """An `ops` key, or (dev only) a loopback caller."""
    refuse_while_failing(request)
    if credentials is not None:
        async with engine.connect() as conn:
            principal = await authenticate(conn, credentials.credentials)
        if principal is None:
            count_failed_authentication(request)
            raise ProblemError(401, "invalid_api_key", "The API key is invalid or revoked.")
        if "ops" not in principal.scopes:
            raise ProblemError(403, "insufficient_scope", "Decoding payloads needs `ops`.")
        return
    host = request.client.host if request.client else ""
    if settings.codec.allow_loopback and host and ipaddress.ip_address(host).is_loopback:
        return
    count_failed_authentication(request)
    raise ProblemError(401, "unauthenticated", "Send an ops API key as `Authorization: Bearer`.")


async def _transcode(request: Request, settings: AppSettings, *, encode: bool) -> Response:
    try:
        payloads = json_format.Parse(await request.body(), Payloads())
    except json_format.ParseError as err:
        raise ProblemError(400, "invalid_payloads", f"Not a Payloads document: {err}") from err
    codec = codec_for(settings)
    try:
        result = await (codec.encode if encode else codec.decode)(list(payloads.payloads))
    except ValueError as err:  # unknown key id, or a payload that fails authentication
        raise ProblemError(422, "undecodable_payload", str(err)) from err
    return Response(
        json_format.MessageToJson(Payloads(payloads=result)), media_type="application/json"
    )


@router.post("/decode", dependencies=[Depends(authorize_ops)])
async def decode(request: Request, settings: AppSettings) -> Response:
    """Decrypt payloads for display."""
    return await _transcode(request, settings, encode=False)


@router.post("/encode", dependencies=[Depends(authorize_ops)])
async def encode(request: Request, settings: AppSettings) -> Response:
    """Encrypt payloads (the UI uses it to send signals with encrypted arguments)."""
    return await _transcode(request, settings, encode=True)
