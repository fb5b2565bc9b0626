"""The codec server in production: the Web UI's users authenticate with their identity
provider's access token, checked against its keys (a JWKS), and a claim makes them a
tenant's ops or the platform (#16 item 2). The API runs in-process on the real PostgreSQL;
the identity provider is a locally generated RSA key."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from api.app import create_app
from kernel.codec import codec_for
from kernel.db import dispose_engines, get_engine
from ops.devstack import Stack

ISSUER = "https://id.example.test/realms/payments"
AUDIENCE = "temporal-ui"
PLAIN = b'"Zebulon Quixote"'


def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


IDP_KEY = _private_key()
OTHER_KEY = _private_key()


@pytest.fixture
async def app(database: Stack, tmp_path: Path) -> AsyncIterator[FastAPI]:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(IDP_KEY.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "idp-1", "use": "sig"}]}))
    settings = database.settings.updated(
        {
            "codec.oidc_jwks": str(jwks),
            "codec.oidc_issuer": ISSUER,
            "codec.oidc_audience": AUDIENCE,
            "codec.allow_loopback": False,
        }
    )
    app = create_app(settings)
    app.state.engine = get_engine(settings)
    app.state.settings = settings
    yield app
    await dispose_engines()


def token(key: rsa.RSAPrivateKey = IDP_KEY, **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": f"user-{uuid.uuid4().hex[:6]}"}
    body |= {"iat": now, "exp": now + 300, **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "idp-1"})


async def decode(app: FastAPI, bearer: str, payload: Payload) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.50", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        return await client.post(
            "/codec/decode",
            content=json_format.MessageToJson(Payloads(payloads=[payload])),
            headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"},
        )


async def test_the_web_uis_access_token_decides_whose_payloads_are_decoded(
    app: FastAPI,
) -> None:
    # a payload of the platform's own work (master key, no tenant): a reconciliation's
    [sealed] = await codec_for(app.state.settings).encode(
        [Payload(metadata={"encoding": b"json/plain"}, data=PLAIN)]
    )
    platform = await decode(app, token(payments_roles=["platform"]), sealed)
    assert platform.status_code == 200, platform.text
    assert json_format.Parse(platform.text, Payloads()).payloads[0].data == PLAIN

    # a tenant's ops user (roles as a space-separated string, as some providers send them)
    tenant_ops = await decode(app, token(payments_roles="ops", payments_tenant="ten_a"), sealed)
    assert tenant_ops.status_code == 403, tenant_ops.text
    assert tenant_ops.json()["code"] == "payload_of_another_tenant"

    for refused in (
        token(OTHER_KEY, payments_roles=["platform"]),  # not the provider's key
        token(payments_roles=["platform"], iss="https://evil.example"),
        token(payments_roles=["platform"], aud="another-app"),
        token(payments_roles=["platform"], exp=int(time.time()) - 60),
        token(payments_roles=["viewer"], payments_tenant="ten_a"),  # grants nothing here
        token(payments_roles=["ops"]),  # ops of no tenant
        jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": 2**40}, "k" * 32),
    ):
        answer = await decode(app, refused, sealed)
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "invalid_access_token"
