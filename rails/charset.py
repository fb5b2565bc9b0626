"""What text each rail can carry, and the explicit transliteration into it (DESIGN §9).

The rule, the same on both rails: a character the rail's set holds is kept as it is; any
other character is transliterated to ASCII (`anyascii`: "Zoë Łukasz-Ñúñez" → "Zoe
Lukasz-Nunez"), symbols and emoji are dropped, and what is still outside the set becomes a
space (SEPA first substitutes `&` → `+`, `<`/`[`/`{` → `(`, `>`/`]`/`}` → `)`). The result is
cut to the rail's field. Text the set already holds comes out unchanged, so every message
built before this rule existed is built byte for byte the same (a file or message resent
after a crash stays a duplicate to the bank, never a conflict), and the conversion is
idempotent: the rail form of a rail form is itself. Case is kept: NACHA allows lower case,
and upper-casing would change every earlier file.

The API converts at the door, refuses text that converts to nothing usable (no ASCII letter
or digit left) and a SEPA remittance longer than 140 characters once converted, and shows the
creditor's name in its rail form beside the original (`creditor.rail_name`); the original is
what is screened and displayed. The NACHA and pacs.008 builders apply the same conversion, so
what they carry is what the API showed, even for a payment that reached them another way.

- ACH (nacha/charset.py): printable ASCII; the entry's individual name is 22 characters;
  amounts up to 9,999,999,999 cents (the 10-digit amount field).
- SEPA (iso20022/charset.py): the EPC Latin basic set `a-z A-Z 0-9 / - ? : ( ) . , ' +`
  and space; names 70 characters, unstructured remittance 140; amounts up to
  999,999,999.99 EUR.
"""

from __future__ import annotations

from iso20022.charset import SEPA_MAX_AMOUNT, SEPA_NAME_LENGTH, SEPA_REMITTANCE_LENGTH, epc_text
from nacha.charset import NACHA_MAX_AMOUNT, NACHA_NAME_LENGTH, meaningful, nacha_text

__all__ = [
    "NACHA_MAX_AMOUNT",
    "NACHA_NAME_LENGTH",
    "SEPA_MAX_AMOUNT",
    "SEPA_NAME_LENGTH",
    "SEPA_REMITTANCE_LENGTH",
    "epc_text",
    "meaningful",
    "nacha_text",
]
