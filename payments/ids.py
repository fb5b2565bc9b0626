"""Prefixed, time-ordered identifiers (DESIGN §7: `cus_`, `acc_`, `pay_`, `dep_`, `scr_`).

Ids sort by creation time (a ULID-like layout: 48-bit milliseconds + 80 random bits, Crockford
base32) so that `starting_after` pagination and the Web UI's workflow list read in order.
"""

from __future__ import annotations

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
