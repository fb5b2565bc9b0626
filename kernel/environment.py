"""Which environment a process runs in, and the secrets it refuses outside dev (DESIGN §9).

`PAYMENTS_ENV` is `dev` or `production` (the default). `make dev`, the tests and the
benchmarks run in `dev`, where the published development secrets are fine. In production
every process refuses to start on a secret that is published (in this repository's source,
compose file or examples), all zero, too short, or on the codec server's loopback trust, and
names each setting to provide, one line each. A process checks only what it uses: the
`payments ledger verify` command needs no payload key.
"""

from __future__ import annotations

import base64
import binascii
import sys
from collections.abc import Iterable
from enum import StrEnum

from kernel.settings import CodecSettings, RailSettings, ReviewSettings, Settings, secret_list

# Secrets this repository publishes: the settings' defaults, docker-compose's and the
# Kubernetes example's. Anyone can read them, so they protect nothing in production.
PUBLISHED_PAYLOAD_KEYS = frozenset(
    item.partition(":")[2]
    for item in str(CodecSettings.model_fields["payload_keys"].default).split(",")
)
PUBLISHED_CALLBACK_SECRETS = frozenset(
    {
        str(RailSettings.model_fields["callback_secret"].default),
        "compose-dev-rail-callback-secret",  # docker-compose's, before it required one
        "CHANGE-ME",  # deploy/k8s/secret.example.yaml
    }
)
# an HMAC secret shorter than this is guessable offline from one signed callback
MIN_SECRET_LENGTH = 32


class Uses(StrEnum):
    """What a process does that needs a secret."""

    TEMPORAL = "temporal"  # encrypts/decrypts Temporal payloads: PAYMENTS_PAYLOAD_KEYS
    RAIL_CALLBACKS = "rail_callbacks"  # signs or verifies the bank's callbacks
    CODEC_SERVER = "codec_server"  # serves decrypted payloads to the Web UI
    WEBHOOKS = "webhooks"  # registers or delivers to partners' URLs
    REVIEWS = "reviews"  # mints or verifies four-eyes review tokens
    BANK_SUBMISSIONS = "bank_submissions"  # signs (platform) or verifies (bank) our requests
    LISTENERS = "listeners"  # serves partners on one port and the bank on another


def _payload_key_problems(settings: Settings) -> list[str]:
    problems = []
    items = [part.strip() for part in settings.codec.payload_keys.split(",") if part.strip()]
    if not items:
        return ["PAYMENTS_PAYLOAD_KEYS: not set; give 'id:<base64 of 32 random bytes>'"]
    for item in items:
        key_id, _, encoded = item.partition(":")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if encoded in PUBLISHED_PAYLOAD_KEYS:
            problems.append(f"PAYMENTS_PAYLOAD_KEYS: key {key_id!r} is the published dev key")
        elif len(key) != 32:
            problems.append(f"PAYMENTS_PAYLOAD_KEYS: key {key_id!r} is not 32 bytes of base64")
        elif len(set(key)) < 8:
            # all zero (the example's placeholder) or another trivially guessable pattern
            problems.append(f"PAYMENTS_PAYLOAD_KEYS: key {key_id!r} is not random")
    if (
        settings.codec.payload_key_id.upper() == "CHANGE-ME"
        or settings.codec.payload_key_id.startswith("dev-")
    ):
        problems.append("PAYMENTS_PAYLOAD_KEY_ID: names the published dev key; set your own")
    return problems


def _shared_secret_problems(variable: str, configured: str, published: frozenset[str]) -> list[str]:
    """What is wrong with an HMAC secret setting; comma-separated while a secret rotates,
    every one listed must be fit to use."""
    secrets = secret_list(configured)
    if not secrets:
        return [f"{variable}: not set"]
    if any(secret in published for secret in secrets):
        return [f"{variable}: the published dev secret; set your own"]
    if any(len(secret) < MIN_SECRET_LENGTH for secret in secrets):
        return [f"{variable}: shorter than {MIN_SECRET_LENGTH} characters"]
    return []


PUBLISHED_SUBMISSION_SECRETS = frozenset(
    {str(RailSettings.model_fields["submission_secret"].default), "CHANGE-ME"}
)
PUBLISHED_REVIEW_SECRETS = frozenset(
    {str(ReviewSettings.model_fields["token_secrets"].default), "CHANGE-ME"}
)


def _codec_server_problems(settings: Settings) -> list[str]:
    codec = settings.codec
    problems = []
    if codec.allow_loopback:
        problems.append(
            "PAYMENTS_CODEC_ALLOW_LOOPBACK: must be false (every codec caller authenticates)"
        )
    if codec.oidc_jwks:
        # the keys that vouch for every Web UI user: fetched over plain HTTP, anyone on the
        # path could swap them; without issuer and audience, any token of the provider's
        # (for another application) would do
        if codec.oidc_jwks.startswith("http://"):
            problems.append("PAYMENTS_CODEC_OIDC_JWKS: must be an https URL or a file path")
        if not codec.oidc_issuer:
            problems.append("PAYMENTS_CODEC_OIDC_ISSUER: not set (required with OIDC_JWKS)")
        if not codec.oidc_audience:
            problems.append("PAYMENTS_CODEC_OIDC_AUDIENCE: not set (required with OIDC_JWKS)")
    return problems


def production_problems(settings: Settings, uses: Iterable[Uses]) -> list[str]:
    """One line per setting this process must be given before it may run in production;
    empty in dev."""
    if settings.env == "dev":
        return []
    problems: list[str] = []
    wanted = set(uses)
    if Uses.TEMPORAL in wanted:
        problems += _payload_key_problems(settings)
    if Uses.RAIL_CALLBACKS in wanted:
        problems += _shared_secret_problems(
            "PAYMENTS_RAIL_CALLBACK_SECRET",
            settings.rails.callback_secret,
            PUBLISHED_CALLBACK_SECRETS,
        )
    if Uses.BANK_SUBMISSIONS in wanted:
        problems += _shared_secret_problems(
            "PAYMENTS_RAIL_SUBMISSION_SECRET",
            settings.rails.submission_secret,
            PUBLISHED_SUBMISSION_SECRETS,
        )
    if Uses.LISTENERS in wanted and settings.api.internal_port == settings.api.port:
        problems.append(
            "PAYMENTS_API_INTERNAL_PORT: must differ from PAYMENTS_API_PORT (the bank's "
            "callbacks and /metrics would be served where partners connect)"
        )
    if Uses.REVIEWS in wanted:
        problems += _shared_secret_problems(
            "PAYMENTS_REVIEW_TOKEN_SECRETS",
            settings.reviews.token_secrets,
            PUBLISHED_REVIEW_SECRETS,
        )
    if Uses.CODEC_SERVER in wanted:
        problems += _codec_server_problems(settings)
    if Uses.WEBHOOKS in wanted and settings.webhooks.allow_private_networks:
        problems.append(
            "PAYMENTS_WEBHOOK_ALLOW_PRIVATE_NETWORKS: must be false (webhooks would reach inside)"
        )
    return problems


def require_safe_secrets(settings: Settings, process: str, uses: Iterable[Uses]) -> None:
    """Exit (status 2) naming each setting to provide, if this process may not run as set."""
    problems = production_problems(settings, uses)
    if not problems:
        return
    for problem in problems:
        print(f"{process}: refusing to start in production: {problem}", file=sys.stderr)
    print(f"{process}: (PAYMENTS_ENV=dev only for a development machine)", file=sys.stderr)
    raise SystemExit(2)
