"""ABA routing transit numbers: the 3-7-1 weighted check digit."""

from __future__ import annotations

import re

_WEIGHTS = (3, 7, 1, 3, 7, 1, 3, 7, 1)
# explicit [0-9]: str.isdigit() and \d also accept non-ASCII digits such as '²' or '٣'
_NINE_DIGITS = re.compile(r"[0-9]{9}")
_EIGHT_DIGITS = re.compile(r"[0-9]{8}")


def routing_number_valid(rtn: str) -> bool:
    """True when `rtn` is exactly nine ASCII digits whose 3-7-1 weighted sum is a multiple of 10.

    Only the checksum is verified, not whether the number is assigned to a live institution.
    """
    if not isinstance(rtn, str) or _NINE_DIGITS.fullmatch(rtn) is None:
        return False
    return sum(int(d) * w for d, w in zip(rtn, _WEIGHTS, strict=True)) % 10 == 0


def routing_check_digit(first8: str) -> str:
    """The check digit completing the 8-digit institution identifier `first8` to a valid RTN.

    Needed because several records carry only the 8-digit DFI identification (trace numbers,
    batch ODFI), e.g. to address a return to the original ODFI.
    """
    if _EIGHT_DIGITS.fullmatch(first8) is None:
        raise ValueError(f"expected 8 ASCII digits, got {first8!r}")
    total = sum(int(d) * w for d, w in zip(first8, _WEIGHTS[:8], strict=True))
    return str(-total % 10)
