"""The Temporal Web UI's users at the codec server: OIDC access tokens checked against the
identity provider's keys (#16 item 2), mapped to a tenant's ops or to the platform.

The Web UI signs its users in with the identity provider and forwards their access token
(`Authorization: Bearer <JWT>`) on every codec call. Loopback trust is a dev convenience
(production refuses it); this is how production tells who is asking.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from kernel.settings import CodecSettings

# asymmetric algorithms only: with a shared-secret algorithm the JWKS's public key would
# become an HMAC secret anyone can sign with
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384"]


class TokenRefusedError(ValueError):
    """The token is not one of the identity provider's, has expired, or grants nothing here."""


@dataclass(frozen=True)
class TokenHolder:
    """Who the token names: a tenant's ops user (`tenant` set) or a platform user (None)."""

    subject: str
    tenant: str | None


@functools.cache
def _jwks_client(url: str) -> jwt.PyJWKClient:
    # one client per URL and process: it caches the provider's keys between calls
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=300)


def _key_from_file(path: str, token: str) -> Any:
    keys = jwt.PyJWKSet.from_json(Path(path).read_text())
    kid = jwt.get_unverified_header(token).get("kid")
    try:
        return keys[kid].key if kid else keys.keys[0].key
    except (KeyError, IndexError):
        raise TokenRefusedError("the token's key is not among the identity provider's") from None


async def _signing_key(settings: CodecSettings, token: str) -> Any:
    source = settings.oidc_jwks
    if source.startswith(("https://", "http://")):
        # PyJWKClient fetches synchronously: keep the event loop free
        found = await asyncio.to_thread(_jwks_client(source).get_signing_key_from_jwt, token)
        return found.key
    return _key_from_file(source, token)


def _roles(claims: dict[str, Any], claim: str) -> set[str]:
    value = claims.get(claim, [])
    return set(value.split()) if isinstance(value, str) else {str(role) for role in value}


async def verify_token(settings: CodecSettings, token: str) -> TokenHolder:
    """The holder of a valid access token, or `TokenRefusedError` naming why not."""
    if not settings.oidc_jwks:
        raise TokenRefusedError("access tokens are not accepted here (no PAYMENTS_CODEC_OIDC_JWKS)")
    try:
        key = await _signing_key(settings, token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            audience=settings.oidc_audience or None,
            issuer=settings.oidc_issuer or None,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except (jwt.PyJWTError, OSError) as error:
        raise TokenRefusedError(f"access token refused: {error}") from None
    roles = _roles(claims, settings.oidc_roles_claim)
    if "platform" in roles:
        return TokenHolder(str(claims["sub"]), None)
    tenant = claims.get(settings.oidc_tenant_claim)
    if "ops" in roles and isinstance(tenant, str) and tenant:
        return TokenHolder(str(claims["sub"]), tenant)
    raise TokenRefusedError("the token grants neither `platform` nor a tenant's `ops`")
