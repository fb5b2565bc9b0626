"""What a NACHA alphanumeric field can carry, and the explicit transliteration into it.

Printable ASCII (0x20-0x7E, upper and lower case) is kept as it is; any other character
is transliterated (`anyascii`: "Zoë Łukasz-Ñúñez" → "Zoe Lukasz-Nunez"), symbols and emoji
are dropped, and the result is cut to the field. The rule for both rails is in
rails/charset.py; iso20022/charset.py is the SEPA twin (the engines may not import each
other, so each holds its own few lines).
"""

from __future__ import annotations

import re
import unicodedata

from anyascii import anyascii

NACHA_NAME_LENGTH = 22  # the individual name of an entry detail record
# the Amount field of an entry detail record is 10 digits of cents
NACHA_MAX_AMOUNT = 9_999_999_999

_CARRIED = re.compile(r"[\x20-\x7e]")
# symbols (emoji, dingbats, ...), controls, unassigned, private-use and surrogate code
# points: anyascii would spell an emoji out as ":grinning:", which is no part of a name
_DROPPED_CATEGORIES = frozenset({"So", "Sk", "Cn", "Co", "Cs", "Cc", "Cf"})
_SPACES = re.compile(r" {2,}")
_MEANINGFUL = re.compile(r"[A-Za-z0-9]")


def nacha_text(text: str, width: int = NACHA_NAME_LENGTH) -> str:
    """`text` as a NACHA alphanumeric field of `width` characters carries it; text already
    in the set comes out unchanged (but cut), so earlier files are rebuilt byte for byte."""
    if not all(_CARRIED.fullmatch(ch) for ch in text):
        out = []
        for ch in text:
            if _CARRIED.fullmatch(ch):
                out.append(ch)
            elif unicodedata.category(ch) in _DROPPED_CATEGORIES:
                out.append(" ")
            else:
                out.extend(c if _CARRIED.fullmatch(c) else " " for c in anyascii(ch))
        # a dropped character leaves a space: one between words, none at the ends
        text = _SPACES.sub(" ", "".join(out)).strip()
    return text if len(text) <= width else text[:width].rstrip()


def meaningful(text: str) -> bool:
    """Whether a field's text still says something: at least one ASCII letter or digit."""
    return _MEANINGFUL.search(text) is not None
