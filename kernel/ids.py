"""Prefixed, time-ordered identifiers (DESIGN §7: `cus_`, `acc_`, `pay_`, `dep_`, `scr_`).

Ids sort by creation time (a ULID-like layout: 48-bit milliseconds + 80 random bits, Crockford
base32) so that `starting_after` pagination and the Web UI's workflow list read in order.
"""

from __future__ import annotations

import hashlib
import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    """Return a new id such as `pay_01jd…` (26 characters after the prefix)."""
    millis = time.time_ns() // 1_000_000
    return f"{prefix}_{_encode(millis, 10)}{_encode(secrets.randbits(80), 16)}"


def derived_id(prefix: str, *parts: str) -> str:
    """A stable id derived from `parts` (e.g. tenant + idempotency key).

    Two API replicas handling the same request compute the same id, so the payment
    workflow (whose id is the payment id) can start only once whatever races happen.
    """
    digest = int.from_bytes(hashlib.sha256("\x00".join(parts).encode()).digest()[:17], "big")
    return f"{prefix}_{_encode(digest >> 6, 26)}"
