"""Log redaction: full IBANs, account numbers and national ids never reach a log line.

Masking keeps enough to correlate (country + check digits, last four characters) and
nothing that identifies an account. Applied to every string of every log event, structlog's
and the standard library's alike, so a careless `log.info(f"... {iban}")` is safe too.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

# IBAN: country, check digits, 11 to 30 alphanumerics (compact or in groups of four)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]){11,30}\b")
# account numbers, routing numbers, national ids written as long digit runs
_DIGITS = re.compile(r"(?<![\w.])(\d{2,})(\d{4})(?![\w.])")
_MIN_DIGITS = 8


def _mask_iban(match: re.Match[str]) -> str:
    compact = match.group(0).replace(" ", "")
    return f"{compact[:4]}…{compact[-4:]}"


def redact(text: str) -> str:
    """Mask IBANs and long digit runs in `text`."""
    text = _IBAN.sub(_mask_iban, text)
    return _DIGITS.sub(
        lambda m: (
            m.group(0) if len(m.group(0)) < _MIN_DIGITS else "*" * len(m.group(1)) + m.group(2)
        ),
        text,
    )


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(item) for item in value)
    return value


def redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
    """structlog processor: redact every string in the event."""
    return {key: _scrub(value) for key, value in event_dict.items()}
