"""Log redaction: full IBANs, account and card numbers and national ids never reach a log line.

Masking keeps enough to correlate (country + check digits, last four characters) and
nothing that identifies an account or a person. Applied to every string of every log event,
structlog's and the standard library's alike, so a careless `log.info(f"... {iban}")` is
safe too.

What is masked (DESIGN §5, #17):
- IBANs, compact or in groups of four, in capitals as written on paper; in lower or mixed
  case only when the mod-97 check passes, because lower-case letters-then-digits also begin
  hex digests and generated ids, which must stay readable;
- US social security numbers written 123-45-6789;
- UK national insurance numbers (AB123456C, AB 12 34 56 C);
- card numbers in groups (4111 1111 1111 1111, 4111-1111-1111-1111, Amex 3782 822463 10005);
- any other run of eight or more digits (account, routing and card numbers written compact).
Dates, times, amounts and prefixed ids (pay_…, cus_…) are left alone.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

# IBAN: country, check digits, then 11 to 30 alphanumerics written compact, or in groups of
# four separated by single spaces (the paper format: "DE89 3704 0044 0532 0130 00")
_IBAN_BODY = r"[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)"
_IBAN = re.compile(rf"\b{_IBAN_BODY}\b")
_IBAN_ANY_CASE = re.compile(rf"\b{_IBAN_BODY}\b", re.IGNORECASE)
# card numbers in groups: 4-4-4-4 (and 4-4-4-4-3 for 19 digits) or Amex 4-6-5, one
# separator kind throughout
_CARD = re.compile(
    r"(?<![\w.-])\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{3})?(?![\w.-])"
    r"|(?<![\w.-])\d{4}([ -])\d{6}\2\d{5}(?![\w.-])"
)
# US SSN: 3-2-4 digits (a date is 4-2-2, a phone number 3-3-4)
_SSN = re.compile(r"(?<![\w.-])\d{3}-\d{2}-(\d{4})(?![\w.-])")
# UK National Insurance number: two prefix letters (D, F, I, Q, U, V never; O never second),
# six digits (optionally in pairs), suffix A-D
_NINO = re.compile(
    r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", re.IGNORECASE
)
# account numbers, routing numbers, national ids written as long digit runs
_DIGITS = re.compile(r"(?<![\w.])(\d{2,})(\d{4})(?![\w.])")
_MIN_DIGITS = 8


def _iban_checksum_ok(compact: str) -> bool:
    """ISO 13616 mod-97: the check digits of a real IBAN make this 1."""
    rearranged = (compact[4:] + compact[:4]).upper()
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _mask_iban(match: re.Match[str]) -> str:
    compact = match.group(0).replace(" ", "")
    return f"{compact[:4]}…{compact[-4:]}"


def _mask_iban_any_case(match: re.Match[str]) -> str:
    compact = match.group(0).replace(" ", "")
    return _mask_iban(match) if _iban_checksum_ok(compact) else match.group(0)


def _mask_card(match: re.Match[str]) -> str:
    # keep the separators and the last four digits: "**** **** **** 1111"
    text = match.group(0)
    hidden = sum(char.isdigit() for char in text) - 4
    masked: list[str] = []
    for char in text:
        if char.isdigit() and hidden > 0:
            masked.append("*")
            hidden -= 1
        else:
            masked.append(char)
    return "".join(masked)


def _mask_nino(match: re.Match[str]) -> str:
    compact = match.group(0).replace(" ", "")
    return "*" * (len(compact) - 4) + compact[-4:]


def redact(text: str) -> str:
    """Mask IBANs, card numbers, SSNs, NI numbers and long digit runs in `text`."""
    text = _IBAN.sub(_mask_iban, text)
    text = _IBAN_ANY_CASE.sub(_mask_iban_any_case, text)
    text = _CARD.sub(_mask_card, text)
    text = _SSN.sub(lambda m: f"***-**-{m.group(1)}", text)
    text = _NINO.sub(_mask_nino, text)
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
