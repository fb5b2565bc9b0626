"""Signing the platform's requests to the bank, so the bank accepts them from us only.

`Platform-Signature: v1=<hex>` with hex = HMAC-SHA256(secret, f"{timestamp}.{METHOD}.
{path?query}.".encode() + body), one signature per configured secret while one rotates, and
`Platform-Timestamp`. The method and target are signed with the body, so a captured
submission cannot be redirected to another route or replayed after the tolerance window
(and a replay inside it is a duplicate message id, which the bank acknowledges once).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

TIMESTAMP_HEADER = "Platform-Timestamp"
SIGNATURE_HEADER = "Platform-Signature"
SCHEME = "v1"


def request_headers(
    secrets: Sequence[str], timestamp: int, method: str, target: str, body: bytes
) -> dict[str, str]:
    """The two headers that authenticate one request to the bank."""
    message = f"{timestamp}.{method.upper()}.{target}.".encode() + body
    signatures = (
        f"{SCHEME}={hmac.new(s.encode(), message, hashlib.sha256).hexdigest()}" for s in secrets
    )
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: " ".join(signatures)}
