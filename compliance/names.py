# Transliteration tables necessarily hold look-alike letters (Cyrillic, curly quotes).
# ruff: noqa: RUF001, RUF002, RUF003
"""Name normalisation for sanctions and PEP screening.

Both sides of a comparison (the screened party and every list name) go through the same
pipeline, so any information we throw away is thrown away symmetrically:

1. ASCII folding: compatibility forms are folded (NFKC: fullwidth "Ｍ" is "M"), invisible
   (default-ignorable) characters such as the zero-width space and soft hyphen vanish, accents
   are stripped (NFKD), a few letters without a decomposition are spelled out (ß→ss, ø→o,
   ł→l, ...) and Cyrillic words are transliterated (a simple BGN-like table), so
   "Владимир Путин" and "Vladimir Putin" meet. Letters of other scripts that look like Latin
   ones (Unicode TS #39 confusables, `compliance.confusables`) are read as the Latin letters
   they imitate, in a word that mixes scripts ("Mαduro" with a Greek alpha) or a word made of
   look-alikes only; `mixed_script_words` names the words that mix scripts, because such a
   word is a reason for review in itself.
2. Punctuation: apostrophes vanish ("O'BRIEN" → "obrien", "QA'IDA" → "qaida"), dots inside
   abbreviations join ("S.A." → "sa", "J.P." → "jp"), every other separator (hyphen, comma,
   slash, ...) splits tokens ("AL-QAEDA" → "al qaeda").
3. Case folding.
4. "SURNAME, Given" → "Given SURNAME" for individuals. The scorer is order-independent, so
   this only matters for explanations and for the concatenated-spelling variant.
5. Stopwords: connector particles of European names and company names ("de", "la", "of",
   "the", "van", "von", "y", ...) are dropped when something else remains.
   Deliberately NOT stopwords: "al"/"el" (Arabic article), "bin"/"ibn"/"bint", "abu", "abd".
   They are part of the legal name ("AL-ASSAD", "BIN LADEN") and dropping them would make
   e.g. "AL QAEDA" collapse to a single generic token; their short length already gives them
   little weight in the length-weighted score, which is the influence they deserve.
6. Company legal-form suffixes ("LLC", "LTD", "GMBH", "S.A. DE C.V.", "OOO", "SP Z O O", ...)
   are dropped from non-individual names (when something else remains), so "ACME TRADING
   LLC" and "Acme Trading Ltd." compare equal. Individuals keep every token: "SA" and "CO"
   are plausible Korean/Vietnamese name parts.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from compliance.confusables import lookalikes, script_of

# Letters that NFKD does not decompose into ASCII.
_SPECIAL_LATIN_LETTERS: dict[str, str] = {
    "ß": "ss",
    "ẞ": "SS",
    "æ": "ae",
    "Æ": "AE",
    "œ": "oe",
    "Œ": "OE",
    "ø": "o",
    "Ø": "O",
    "đ": "d",
    "Đ": "D",
    "ð": "d",
    "Ð": "D",
    "ł": "l",
    "Ł": "L",
    "þ": "th",
    "Þ": "TH",
    "ı": "i",
    "ħ": "h",
    "Ħ": "H",
    "ŋ": "ng",
    "ſ": "s",
    "ĸ": "k",
}
_SPECIAL_LATIN = str.maketrans(_SPECIAL_LATIN_LETTERS)
_SPECIAL_LATIN_KEYS = frozenset(_SPECIAL_LATIN_LETTERS)

_CYRILLIC = {
    "а": "a",
    "б": "b",
    "в": "v",
    "г": "g",
    "д": "d",
    "е": "e",
    "ё": "e",
    "ж": "zh",
    "з": "z",
    "и": "i",
    "й": "y",
    "к": "k",
    "л": "l",
    "м": "m",
    "н": "n",
    "о": "o",
    "п": "p",
    "р": "r",
    "с": "s",
    "т": "t",
    "у": "u",
    "ф": "f",
    "х": "kh",
    "ц": "ts",
    "ч": "ch",
    "ш": "sh",
    "щ": "shch",
    "ъ": "",
    "ы": "y",
    "ь": "",
    "э": "e",
    "ю": "yu",
    "я": "ya",
    "і": "i",
    "ї": "yi",
    "є": "ye",
    "ґ": "g",
    "ў": "u",
}
_CYRILLIC_CHARS: dict[str, str] = {
    **_CYRILLIC,
    **{k.upper(): v.capitalize() for k, v in _CYRILLIC.items()},
}

_APOSTROPHES = re.compile(r"['’‘`´ʼʻ]")
# a dot between two word characters is an abbreviation ("S.A", "J.P"): join, don't split
_INNER_DOT = re.compile(r"(?<=[0-9A-Za-z])\.(?=[0-9A-Za-z])")
_SEPARATORS = re.compile(r"[^0-9a-z]+")

STOPWORDS: frozenset[str] = frozenset(
    {
        "the",
        "of",
        "and",
        "for",
        "de",
        "del",
        "della",
        "der",
        "den",
        "des",
        "di",
        "da",
        "do",
        "dos",
        "das",
        "du",
        "la",
        "le",
        "les",
        "los",
        "las",
        "van",
        "von",
        "y",
        "e",
        "et",
        "und",
    }
)

COMPANY_SUFFIXES: frozenset[str] = frozenset(
    {
        "llc",
        "llp",
        "lp",
        "ltd",
        "ltda",
        "limited",
        "gmbh",
        "mbh",
        "ag",
        "kg",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "sl",
        "cv",
        "bv",
        "nv",
        "co",
        "cia",
        "corp",
        "corporation",
        "inc",
        "incorporated",
        "company",
        "plc",
        "jsc",
        "ojsc",
        "cjsc",
        "pjsc",
        "oao",
        "zao",
        "pao",
        "ooo",
        "ao",
        "tov",
        "pte",
        "pty",
        "bhd",
        "sdn",
        "fze",
        "fzco",
        "fzc",
        "fzllc",
        "kft",
        "doo",
        "ad",
        "as",
        "ab",
        "oy",
        "sro",
    }
)
# multi-token legal forms, matched as a whole (after punctuation handling)
_COMPANY_SUFFIX_SEQUENCES: tuple[tuple[str, ...], ...] = (
    ("sp", "z", "o", "o"),
    ("sp", "z", "oo"),
    ("s", "de", "rl"),
    ("s", "a"),
    ("l", "l", "c"),
    ("co", "ltd"),
)

INDIVIDUAL = "individual"


# Default-ignorable code points (TS #44 DerivedCoreProperties) that are not format
# characters (Cf, which covers the zero-width space and joiners, word joiner, soft hyphen and
# byte-order mark): Python's unicodedata lacks the property itself.
_IGNORABLE_NOT_CF = frozenset(
    chr(code)
    for code in (0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0, *range(0x180B, 0x1810))
)
_VARIATION_SELECTORS = ((0xFE00, 0xFE0F), (0xE0000, 0xE0FFF))
# scripts that are written mixed within one word (Japanese): no disguise
_MIXED_BY_NATURE = frozenset({"CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA", "HANGUL"})
# a run of letters and combining marks
_WORD = re.compile(
    r"(?:[^\W\d_]|[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f])+"
)


def is_default_ignorable(ch: str) -> bool:
    """True for characters that are invisible and carry no letter (zero-width space, ZWNJ,
    ZWJ, word joiner, soft hyphen, byte-order mark, variation selectors, fillers)."""
    if unicodedata.category(ch) == "Cf" or ch in _IGNORABLE_NOT_CF:
        return True
    code = ord(ch)
    return any(low <= code <= high for low, high in _VARIATION_SELECTORS)


def _scripts(word: str) -> frozenset[str]:
    """The scripts of the letters of `word` (modifier letters such as "ʼ" belong to none)."""
    return frozenset(
        "LATIN" if ch.isascii() else script_of(ch)
        for ch in word
        if ch.isalpha() and unicodedata.category(ch) != "Lm"
    )


def _mixes_scripts(scripts: frozenset[str]) -> bool:
    return len(scripts) > 1 and not scripts <= _MIXED_BY_NATURE


def _read_letter(ch: str, table: dict[str, str]) -> str:
    """A non-ASCII letter in a word that is being read as Latin: its Latin look-alike, else
    its Cyrillic transliteration, else itself (accented Latin letters fold later)."""
    if ch.isascii() or not ch.isalpha():
        return ch
    if ch in _SPECIAL_LATIN_KEYS or script_of(ch) == "LATIN":
        return ch
    return table.get(ch, _CYRILLIC_CHARS.get(ch, ch))


def _read_word(word: str) -> str:
    """`word` with look-alike letters read as Latin where the word calls for it.

    A Latin word keeps its letters. A Cyrillic word is a real Cyrillic word: it is
    transliterated (letters the table lacks, such as Macedonian "ѕ", by their look-alike).
    A word of another single script is read as Latin only when every letter of it looks like
    one (an all-Cherokee "ᎷᎪᎠURO" is a disguise; a Greek name is no look-alike and is dropped
    as before, to be screened in its Latin transliteration). A word that mixes scripts reads
    every foreign letter that has a Latin look-alike as that letter.
    """
    scripts = _scripts(word)
    if scripts <= {"LATIN"}:
        table = lookalikes()
        # Latin letters that imitate others ("ɑ" for "a") and neither decompose nor are spelt
        # out: their TS #39 reading
        return "".join(
            table.get(ch, ch)
            if not ch.isascii() and ch not in _SPECIAL_LATIN_KEYS and not _decomposes(ch)
            else ch
            for ch in word
        )
    table = lookalikes()
    if scripts == {"CYRILLIC"}:
        return "".join(_CYRILLIC_CHARS.get(ch, table.get(ch, ch)) for ch in word)
    if len(scripts) == 1:
        if _lookalikes_only(word, table):
            return "".join(table.get(ch, ch) for ch in word)
        return word
    return "".join(_read_letter(ch, table) for ch in word)


def _lookalikes_only(word: str, table: dict[str, str]) -> bool:
    """True when every letter of `word` has a Latin look-alike."""
    return all(ch in table for ch in word if ch.isalpha())


def _disguised(word: str) -> bool:
    """A word that mixes scripts, or a word of one script other than Latin and Cyrillic made
    of Latin look-alikes only (an all-Cherokee "ᏦᎥᎷ")."""
    scripts = _scripts(word)
    if _mixes_scripts(scripts):
        return True
    return (
        len(scripts) == 1
        and not scripts <= {"LATIN", "CYRILLIC"}
        and _lookalikes_only(word, lookalikes())
    )


def _decomposes(ch: str) -> bool:
    return unicodedata.normalize("NFKD", ch)[0].isascii()


def _visible(text: str) -> str:
    """`text` in compatibility-folded form (NFKC) without default-ignorable characters."""
    text = "".join(ch for ch in text if not is_default_ignorable(ch))
    return unicodedata.normalize("NFKC", text)


@lru_cache(maxsize=4096)
def _fold_unicode(text: str) -> str:
    text = _WORD.sub(lambda m: _read_word(m.group()), _visible(text))
    text = text.translate(_SPECIAL_LATIN)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if ch.isascii() and not unicodedata.combining(ch))


def fold_to_ascii(text: str) -> str:
    """Return `text` with accents stripped and non-Latin letters transliterated where we can.

    Invisible characters vanish, compatibility forms fold (fullwidth letters), look-alikes of
    Latin letters from other scripts are read as Latin in words that mix scripts or consist
    of look-alikes only. Characters that have no ASCII rendering (e.g. Arabic, CJK) are
    dropped; such names must be screened in a Latin transliteration, as the OFAC list itself
    is.
    """
    if text.isascii():
        return text
    return _fold_unicode(text)


def mixed_script_words(text: str) -> tuple[str, ...]:
    """The words of `text` that mix letters of several scripts (Latin with a Greek omicron,
    Cyrillic with a Latin "p"), or that are written wholly in Latin look-alikes of a script
    other than Cyrillic (Greek capitals spelling "KIM"): a look-alike disguise, or at best a
    name to check by hand.

    Words are taken after invisible characters are removed and compatibility forms folded, so
    an invisible joiner does not split a mixed word into two clean ones. Japanese (kanji with
    kana) is not mixed; Cyrillic words are real Cyrillic words (they are transliterated).
    """
    if text.isascii():
        return ()
    words = (m.group() for m in _WORD.finditer(_visible(text)))
    return tuple(dict.fromkeys(w for w in words if _disguised(w)))


def reorder_surname_first(name: str) -> str:
    """Turn an OFAC-style individual name "SURNAME, Given" into "Given SURNAME".

    Only the first comma is significant; names without a comma are returned unchanged.
    """
    surname, sep, given = name.partition(",")
    if not sep or not given.strip() or not surname.strip():
        return name
    return f"{given.strip()} {surname.strip()}"


def tokenize(name: str) -> list[str]:
    """Fold, case-fold and split `name` into alphanumeric tokens (no stopword handling)."""
    text = fold_to_ascii(name)
    text = _APOSTROPHES.sub("", text)
    text = _INNER_DOT.sub("", text)
    return _SEPARATORS.split(text.casefold()) if text else []


def _strip_suffixes(tokens: list[str]) -> list[str]:
    kept = list(tokens)
    # trailing multi-token legal forms first ("... SP Z O O"), then single tokens anywhere
    changed = True
    while changed:
        changed = False
        for seq in _COMPANY_SUFFIX_SEQUENCES:
            n = len(seq)
            if len(kept) > n and tuple(kept[-n:]) == seq:
                kept = kept[:-n]
                changed = True
    without = [t for t in kept if t not in COMPANY_SUFFIXES]
    return without or kept


def is_individual(party_type: str | None) -> bool | None:
    """Map a free-form party/entity type to individual (True), organisation (False), unknown."""
    if party_type is None:
        return None
    kind = party_type.strip().casefold()
    if kind in {"individual", "person", "natural_person", "natural person"}:
        return True
    if not kind:
        return None
    return False


def name_tokens(name: str, *, individual: bool | None = None) -> tuple[str, ...]:
    """Normalise `name` into the tokens the matcher compares.

    `individual=True` reorders "SURNAME, Given" and keeps legal-form-like tokens;
    `False` (an organisation, vessel, aircraft) or `None` (unknown, e.g. a query without a
    party type) strips company suffixes. Stopwords are dropped unless nothing else remains.
    """
    if individual:
        name = reorder_surname_first(name)
    tokens = [t for t in tokenize(name) if t]
    if not tokens:
        return ()
    content = [t for t in tokens if t not in STOPWORDS] or tokens
    if not individual:
        content = _strip_suffixes(content)
    return tuple(content)


def normalize_name(name: str, *, individual: bool | None = None) -> str:
    """Return the normalised form of `name` as one space-separated string."""
    return " ".join(name_tokens(name, individual=individual))


# Onset classes for blocking. A token is filed under the class of its first sound; onsets
# that transliterate several ways ("ch" is /k/ in Khalid→Chalid, /sh/ in Sharif→Cherif,
# "y"/"j" in Yusuf→Jusuf) are filed under every plausible class, so a lookup from either
# spelling meets the other.
_DIGRAPH_CLASSES: tuple[tuple[str, frozenset[str]], ...] = (
    ("sch", frozenset({"S"})),
    ("dzh", frozenset({"J"})),
    ("ph", frozenset({"F"})),
    ("kh", frozenset({"K"})),
    ("ch", frozenset({"K", "S"})),
    ("sh", frozenset({"S"})),
    ("zh", frozenset({"J", "S"})),
    ("dj", frozenset({"J"})),
    ("th", frozenset({"T"})),
    ("gh", frozenset({"G"})),
)
_LETTER_CLASSES: dict[str, frozenset[str]] = {
    **{v: frozenset({"A"}) for v in "aeiou"},
    "y": frozenset({"A", "J"}),
    "j": frozenset({"J", "A"}),
    "g": frozenset({"J"}),
    "c": frozenset({"K", "S"}),
    "k": frozenset({"K"}),
    "q": frozenset({"K"}),
    "f": frozenset({"F"}),
    "v": frozenset({"F"}),
    "w": frozenset({"F"}),
    "s": frozenset({"S"}),
    "z": frozenset({"S"}),
    "x": frozenset({"S"}),
}


def first_letter_classes(token: str) -> frozenset[str]:
    """Return the phonetic classes of `token`'s first sound (e.g. C/K/Q → "K", PH/F/V/W → "F").

    Used for blocking: two tokens can only be compared if their class sets intersect.
    """
    if not token:
        return frozenset()
    for digraph, classes in _DIGRAPH_CLASSES:
        if token.startswith(digraph):
            return classes
    first = token[0]
    if first.isdigit():
        return frozenset({"#"})
    return _LETTER_CLASSES.get(first, frozenset({first.upper()}))


def same_onset_class(a: str, b: str) -> bool:
    """True when `a` and `b` start with sounds of the same phonetic class."""
    return bool(first_letter_classes(a) & first_letter_classes(b))
