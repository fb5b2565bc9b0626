"""HMAC signatures of the simulator's callbacks.

Headers: `Banksim-Timestamp: <unix seconds>` and `Banksim-Signature: v1=<hex>` where
hex = HMAC-SHA256(secret, f"{timestamp}.".encode() + body). The timestamp is signed too, so a
captured callback cannot be replayed outside the tolerance window.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "Banksim-Timestamp"
SIGNATURE_HEADER = "Banksim-Signature"
SCHEME = "v1"


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `Banksim-Signature` header value for `body` sent at `timestamp`: `v1=<hex>`."""
    return f"{SCHEME}={_digest(secret, timestamp, body)}"


def verify(
    secret: str,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    tolerance_seconds: float,
    now: float | None = None,
) -> bool:
    """True iff the headers carry a valid, fresh signature of `body`.

    `signature_header` may list several comma- or space-separated `v1=` signatures (as during
    a secret rotation); one match suffices. A timestamp further than `tolerance_seconds` from
    `now` (default: the current time) is refused.
    """
    if not timestamp_header or not signature_header:
        return False
    try:
        timestamp = int(timestamp_header.strip())
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = _digest(secret, timestamp, body).encode()
    valid = False
    for candidate in signature_header.replace(",", " ").split():
        scheme, _, value = candidate.partition("=")
        # compare every candidate (no early exit) so timing says nothing about which matched
        if scheme == SCHEME and hmac.compare_digest(value.encode(), expected):
            valid = True
    return valid
