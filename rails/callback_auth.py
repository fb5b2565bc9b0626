"""Verifying the bank's signed callbacks (its side of the scheme is the bank's business).

`<scheme>=<hex>` with hex = HMAC-SHA256(secret, f"{event_id}.{timestamp}.".encode() + body):
the event id and the timestamp are signed with the body, so a captured callback can neither
be replayed outside the tolerance window nor relabelled to slip past the replay cache. The
header may carry several signatures (one per secret while the bank rotates), and we may hold
several secrets (ours rotating): one match suffices.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

SCHEME = "v2"


def callback_signature_valid(
    secrets: Sequence[str],
    event_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    tolerance_seconds: float,
    now: float,
) -> bool:
    """Whether a fresh signature by one of `secrets` covers this event id, timestamp and body."""
    if not event_id or not timestamp or not signature:
        return False
    # isdigit() alone admits "²" and other digits int() refuses: ASCII digits only
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if abs(now - int(timestamp)) > tolerance_seconds:
        return False
    message = f"{event_id}.{timestamp}.".encode() + body
    expected = [
        f"{SCHEME}={hmac.new(s.encode(), message, hashlib.sha256).hexdigest()}" for s in secrets
    ]
    valid = False
    for candidate in signature.replace(",", " ").split():
        for digest in expected:
            # every comparison runs: timing says nothing about which one matched
            valid |= hmac.compare_digest(candidate.encode(), digest.encode())
    return valid
