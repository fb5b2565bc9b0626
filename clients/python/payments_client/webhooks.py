"""Webhook signature verification, exactly as the platform signs (Standard Webhooks).

A delivery carries `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`:
one or more space-separated `v1,<base64 HMAC-SHA256>` over `<id>.<timestamp>.<raw body>`,
keyed with the base64 part of the endpoint's `whsec_…` secret. While a rotated secret is
still in its overlap (`previous_secret_expires_at`), each delivery carries one signature per
secret, so a receiver holding either secret verifies it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

from payments_client.errors import WebhookVerificationError

# Standard Webhooks' recommended tolerance: older (or future) deliveries are replays
DEFAULT_TOLERANCE_SECONDS = 300


class WebhookEvent(TypedDict):
    """The body of a delivery: the event as `GET /v1/events` lists it."""

    id: str
    type: str
    created_at: str
    data: dict[str, Any]


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of a delivery with `secret` (for tests of receivers)."""
    key = _key(secret)
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify_webhook(
    body: bytes,
    headers: Mapping[str, str],
    secrets: str | Iterable[str],
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> WebhookEvent:
    """Verify a delivery and return its event; raise `WebhookVerificationError` otherwise.

    `body` must be the raw bytes received (a re-serialised JSON would not verify);
    `secrets` is the endpoint's secret, or several while you roll one over yourself;
    `headers` may be any case (a framework's header mapping, or a plain dict).
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        message_id = lowered["webhook-id"]
        timestamp_text = lowered["webhook-timestamp"]
        signatures = lowered["webhook-signature"]
    except KeyError as missing:
        raise WebhookVerificationError(f"missing header {missing.args[0]}") from None
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a Unix time") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise WebhookVerificationError("webhook-timestamp outside the tolerance: a replay?")
    candidates = [s for s in signatures.split(" ") if s.startswith("v1,")]
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    for secret in keys:
        expected = sign(secret, message_id, timestamp, body)
        # every candidate is compared in constant time, so timing says nothing of the key
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            event: WebhookEvent = json.loads(body)
            return event
    raise WebhookVerificationError("no signature matches the secret")


def _key(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        raise WebhookVerificationError("the secret is not a whsec_<base64> secret") from None
