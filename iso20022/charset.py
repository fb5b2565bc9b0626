"""What SEPA carries (the EPC Latin basic set), and the explicit transliteration into it.

The set: a-z A-Z 0-9 / - ? : ( ) . , ' + and space. A character in it is kept as it is;
`& < > [ ] { }` take their usual substitutes (`+ ( ) ( ) ( )`); any other character is
transliterated (`anyascii`: "Zoë Łukasz-Ñúñez" → "Zoe Lukasz-Nunez"), symbols and emoji
are dropped, what is still outside the set becomes a space, and the result is cut to the
field. The rule for both rails is in rails/charset.py; nacha/charset.py is the ACH twin
(the engines may not import each other, so each holds its own few lines).
"""

from __future__ import annotations

import re
import unicodedata

from anyascii import anyascii

SEPA_NAME_LENGTH = 70
SEPA_REMITTANCE_LENGTH = 140  # unstructured remittance information
# the SEPA Credit Transfer rulebook's maximum, 999,999,999.99 EUR
SEPA_MAX_AMOUNT = 99_999_999_999

_CARRIED = re.compile(r"[a-zA-Z0-9/\-?:().,'+ ]")
# the usual substitutes for characters the set lacks (an ampersand reads as a plus)
_SUBSTITUTES = {"&": "+", "<": "(", ">": ")", "[": "(", "]": ")", "{": "(", "}": ")"}
# symbols (emoji, dingbats, ...), controls, unassigned, private-use and surrogate code
# points: anyascii would spell an emoji out as ":grinning:", which is no part of a name
_DROPPED_CATEGORIES = frozenset({"So", "Sk", "Cn", "Co", "Cs", "Cc", "Cf"})
_SPACES = re.compile(r" {2,}")
_MEANINGFUL = re.compile(r"[A-Za-z0-9]")


def _carried(ch: str) -> str:
    if _CARRIED.fullmatch(ch):
        return ch
    return _SUBSTITUTES.get(ch, " ")


def epc_text(text: str, width: int | None = SEPA_NAME_LENGTH) -> str:
    """`text` in the EPC Latin set, cut to `width` characters (None: not cut); text already
    in the set comes out unchanged (but cut), so earlier messages are rebuilt byte for byte."""
    if not all(_CARRIED.fullmatch(ch) for ch in text):
        out = []
        for ch in text:
            if _CARRIED.fullmatch(ch) or ch in _SUBSTITUTES:
                out.append(_carried(ch))
            elif unicodedata.category(ch) in _DROPPED_CATEGORIES:
                out.append(" ")
            else:
                out.extend(_carried(c) for c in anyascii(ch))
        # a dropped character leaves a space: one between words, none at the ends
        text = _SPACES.sub(" ", "".join(out)).strip()
    return text if width is None or len(text) <= width else text[:width].rstrip()


def meaningful(text: str) -> bool:
    """Whether a field's text still says something: at least one ASCII letter or digit."""
    return _MEANINGFUL.search(text) is not None
