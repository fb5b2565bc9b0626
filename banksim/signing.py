"""HMAC signatures of the simulator's callbacks.

Headers: `Banksim-Event-Id: <id>` (the same on every retry of one callback),
`Banksim-Timestamp: <unix seconds>` and `Banksim-Signature: v2=<hex>[ v2=<hex>…]` where
hex = HMAC-SHA256(secret, f"{event_id}.{timestamp}.".encode() + body), one signature per
configured secret (two while a secret rotates, as Standard Webhooks does). The timestamp is
signed, so a captured callback cannot be replayed outside the tolerance window; the event
id is signed, so the receiver's replay cache cannot be dodged by relabelling a capture.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

EVENT_ID_HEADER = "Banksim-Event-Id"
TIMESTAMP_HEADER = "Banksim-Timestamp"
SIGNATURE_HEADER = "Banksim-Signature"
SCHEME = "v2"


def _one_matches(signature_header: str, scheme: str, expected: Sequence[str]) -> bool:
    """Whether one `<scheme>=<hex>` of the header is one of the `expected` digests."""
    valid = False
    for candidate in signature_header.replace(",", " ").split():
        got_scheme, _, value = candidate.partition("=")
        for digest in expected:
            # compare every candidate (no early exit): timing says nothing about which matched
            if got_scheme == scheme and hmac.compare_digest(value.encode(), digest.encode()):
                valid = True
    return valid


def _digest(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    message = f"{event_id}.{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secrets: Sequence[str], event_id: str, timestamp: int, body: bytes) -> str:
    """The `Banksim-Signature` header value: `v2=<hex>` for each secret, space-separated."""
    return " ".join(f"{SCHEME}={_digest(s, event_id, timestamp, body)}" for s in secrets)


def verify(
    secrets: Sequence[str],
    event_id: str | None,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    tolerance_seconds: float,
    now: float | None = None,
) -> bool:
    """True iff the headers carry a valid, fresh signature of `body` and its event id by one
    of `secrets`; one matching `v2=` signature among several suffices."""
    if not event_id or not timestamp_header or not signature_header:
        return False
    stamp = timestamp_header.strip()
    # isdigit() alone admits "²" and other digits int() refuses: ASCII digits only
    if not (stamp.isascii() and stamp.isdigit()):
        return False
    timestamp = int(stamp)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = [_digest(s, event_id, timestamp, body) for s in secrets]
    return _one_matches(signature_header, SCHEME, expected)


# --- the platform's submissions, as the bank checks them --------------------------------------
# Headers: `Platform-Timestamp: <unix seconds>` and `Platform-Signature: v1=<hex>[ …]` where
# hex = HMAC-SHA256(secret, f"{timestamp}.{METHOD}.{path?query}.".encode() + body): the bank
# accepts a message, a file or a question only from whoever holds the shared secret.

PLATFORM_TIMESTAMP_HEADER = "Platform-Timestamp"
PLATFORM_SIGNATURE_HEADER = "Platform-Signature"
PLATFORM_SCHEME = "v1"


def _request_digest(secret: str, timestamp: str, method: str, target: str, body: bytes) -> str:
    message = f"{timestamp}.{method.upper()}.{target}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def request_signed(
    secrets: Sequence[str],
    timestamp_header: str | None,
    signature_header: str | None,
    method: str,
    target: str,
    body: bytes,
    tolerance_seconds: float,
    now: float | None = None,
) -> bool:
    """True iff a fresh `v1=` signature by one of `secrets` covers this request."""
    if not timestamp_header or not signature_header:
        return False
    stamp = timestamp_header.strip()
    if not (stamp.isascii() and stamp.isdigit()):
        return False
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance_seconds:
        return False
    expected = [_request_digest(s, stamp, method, target, body) for s in secrets]
    return _one_matches(signature_header, PLATFORM_SCHEME, expected)
