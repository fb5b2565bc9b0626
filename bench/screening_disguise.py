# The look-alike tables are the point of this file: they hold letters that look like ASCII.
# ruff: noqa: RUF001
"""A disguise set for sanctions screening (`make bench-screening-disguise`), deterministic.

Listed names that the matcher finds in plain form are disguised the way someone hiding a
name in a payment message might do it, and so are common names that are not listed:

* ``greek``, ``cyrillic``, ``armenian``: some Latin letters replaced by a look-alike of that
  script (omicron for o, Cyrillic es for c, Armenian oh for o, ...),
* ``cherokee``: the name in capitals, some letters replaced by Cherokee look-alikes,
* ``fullwidth``: every letter in its fullwidth form (U+FF21...),
* ``zero_width``: invisible characters (zero-width space and joiners, word joiner, soft hyphen,
  byte-order mark) inside the words,
* ``combining``: combining accents over some letters,
* ``mixed``: look-alikes from several scripts in one name, and one invisible character;
* ``plain``: no disguise, the reference (every listed name is found by construction; common
  names that hit in plain form hit in disguise too, and are no failure of the folding).

The look-alike tables here are typed by hand on purpose, independently of the Unicode data
the engine uses, so a look-alike that data misses shows up as a miss.

A disguised listed name is *found* when its entity is among the hits at or above the review
threshold. A disguised common name is a *false positive* when any entity hits. Where the
engine flags a mixed-script word (`Matcher.screening`), the share of flagged queries is
printed too: a flag sends the payment to review even without a hit.

    .venv/bin/python bench/screening_disguise.py [--names 60] [--negatives 60] [--show 10]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "bench"):
    if str(_path) not in sys.path:  # runnable as a plain script from anywhere
        sys.path.insert(0, str(_path))

import screening_labelled as labelled  # noqa: E402

from compliance.lists import EntityType, StaticWatchList, load_ofac  # noqa: E402
from compliance.matcher import Matcher  # noqa: E402
from compliance.names import reorder_surname_first  # noqa: E402

SEED = 20261207
# The example, always in the set.
ANCHOR = "MADURO MOROS, Nicolas"

GREEK = {
    "A": "Α", "B": "Β", "E": "Ε", "Z": "Ζ", "H": "Η", "I": "Ι", "K": "Κ", "M": "Μ", "N": "Ν",
    "O": "Ο", "P": "Ρ", "T": "Τ", "Y": "Υ", "X": "Χ",
    "o": "ο", "a": "α", "i": "ι", "v": "ν", "k": "κ", "p": "ρ", "u": "υ",
}  # fmt: skip
CYRILLIC = {
    "A": "А", "B": "В", "C": "С", "E": "Е", "H": "Н", "K": "К", "M": "М", "O": "О", "P": "Р",
    "T": "Т", "X": "Х", "I": "І", "J": "Ј", "S": "Ѕ",
    "a": "а", "c": "с", "e": "е", "o": "о", "p": "р", "x": "х", "y": "у", "i": "і", "j": "ј",
    "s": "ѕ", "h": "һ",
}  # fmt: skip
ARMENIAN = {
    "O": "Օ", "S": "Տ", "U": "Ս", "L": "Լ",
    "o": "օ", "h": "հ", "n": "ո", "u": "ս", "g": "ց", "q": "զ",
}  # fmt: skip
CHEROKEE = {
    "A": "Ꭺ", "B": "Ᏼ", "C": "Ꮯ", "D": "Ꭰ", "E": "Ꭼ", "G": "Ꮐ", "H": "Ꮋ", "J": "Ꭻ", "K": "Ꮶ",
    "L": "Ꮮ", "M": "Ꮇ", "P": "Ꮲ", "R": "Ꭱ", "S": "Ꮪ", "T": "Ꭲ", "V": "Ꮩ", "W": "Ꮃ", "Z": "Ꮓ",
}  # fmt: skip
INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\ufeff")
COMBINING = ("\u0301", "\u0300", "\u0308", "\u0302", "\u0327", "\u0303", "\u030c")

KINDS = (
    "plain",
    "greek",
    "cyrillic",
    "armenian",
    "cherokee",
    "fullwidth",
    "zero_width",
    "combining",
    "mixed",
)


def substitute(rng: random.Random, name: str, table: dict[str, str], share: float = 0.5) -> str:
    """Replace about `share` of the letters that have a look-alike in `table` (at least one;
    `name` unchanged when none has)."""
    eligible = [i for i, ch in enumerate(name) if ch in table]
    if not eligible:
        return name
    chosen = {i for i in eligible if rng.random() < share} or {rng.choice(eligible)}
    return "".join(table[ch] if i in chosen else ch for i, ch in enumerate(name))


def fullwidth(name: str) -> str:
    """Every printable ASCII character in its fullwidth form (the space stays a space)."""
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in name)


def insert_between_letters(rng: random.Random, name: str, marks: Sequence[str]) -> str:
    """Put one of `marks` after about a third of the letters (at least one)."""
    letters = [i for i, ch in enumerate(name) if ch.isalpha()]
    chosen = {i for i in letters if rng.random() < 0.34} or {rng.choice(letters)}
    return "".join(ch + rng.choice(marks) if i in chosen else ch for i, ch in enumerate(name))


def mixed(rng: random.Random, name: str) -> str:
    """Look-alikes drawn from every script table, letter by letter, and one invisible
    character."""
    tables = (GREEK, CYRILLIC, ARMENIAN, CHEROKEE)
    out = []
    for ch in name:
        options = [t[ch] for t in tables if ch in t]
        out.append(rng.choice(options) if options and rng.random() < 0.5 else ch)
    text = "".join(out)
    letters = [i for i, ch in enumerate(text) if ch.isalpha()]
    at = rng.choice(letters) + 1
    return text[:at] + rng.choice(INVISIBLE) + text[at:]


def disguise(rng: random.Random, kind: str, name: str) -> str:
    """`name` (in title case) disguised the `kind` way."""
    makers: dict[str, Callable[[], str]] = {
        "plain": lambda: name,
        "greek": lambda: substitute(rng, name, GREEK),
        "cyrillic": lambda: substitute(rng, name, CYRILLIC),
        "armenian": lambda: substitute(rng, name, ARMENIAN),
        "cherokee": lambda: substitute(rng, name.upper(), CHEROKEE),
        "fullwidth": lambda: fullwidth(name),
        "zero_width": lambda: insert_between_letters(rng, name, INVISIBLE),
        "combining": lambda: insert_between_letters(rng, name, COMBINING),
        "mixed": lambda: mixed(rng, name),
    }
    return makers[kind]()


@dataclass(frozen=True)
class DisguisedQuery:
    """One query of the disguise set."""

    query: str
    kind: str
    plain: str
    entity_id: str | None
    """The listed entity the plain name belongs to; None for a common name."""


def plain_form(listed: str, individual: bool) -> str:
    """The way a payment would carry a listed name: "Given Surname", in title case."""
    return (reorder_surname_first(listed) if individual else listed).title()


def found_by(matcher: Matcher, query: str, entity_id: str) -> bool:
    """True when `entity_id` hits `query` at or above the review threshold."""
    threshold = matcher.settings.review_threshold
    return any(
        h.entity_id == entity_id and h.score >= threshold for h in matcher.screen(query, limit=50)
    )


def listed_names(
    watch_list: StaticWatchList, matcher: Matcher, count: int
) -> list[tuple[str, str]]:
    """(plain name, entity id) of `count` primary names the matcher finds in plain form."""
    rng = random.Random(SEED)
    entities = [
        e for e in watch_list.entities if e.type in {EntityType.INDIVIDUAL, EntityType.ENTITY}
    ]
    rng.shuffle(entities)
    entities.sort(key=lambda e: e.names[0].name != ANCHOR)  # stable: the anchor first
    chosen: list[tuple[str, str]] = []
    for entity in entities:
        if len(chosen) == count:
            break
        plain = plain_form(entity.names[0].name, entity.type is EntityType.INDIVIDUAL)
        if len(plain) >= 6 and found_by(matcher, plain, entity.id):
            chosen.append((plain, entity.id))
    return chosen


def disguise_set(
    watch_list: StaticWatchList, matcher: Matcher, *, names: int = 60, negatives: int = 60
) -> list[DisguisedQuery]:
    """Every listed name and every common name, disguised every way."""
    rng = random.Random(SEED + 1)
    queries: list[DisguisedQuery] = []
    for plain, entity_id in listed_names(watch_list, matcher, names):
        queries.extend(DisguisedQuery(disguise(rng, k, plain), k, plain, entity_id) for k in KINDS)
    for negative in labelled.negatives(watch_list, negatives, seed=SEED):
        plain = negative.query.title()
        queries.extend(DisguisedQuery(disguise(rng, k, plain), k, plain, None) for k in KINDS)
    return queries


@dataclass(frozen=True)
class Outcome:
    """What screening one disguised query gave."""

    query: DisguisedQuery
    hit: bool
    """The right entity for a listed name, any entity for a common name."""
    flagged: bool
    """The engine flagged the query (e.g. a mixed-script word)."""


def screen_all(matcher: Matcher, queries: Sequence[DisguisedQuery]) -> list[Outcome]:
    """Screen every query with the name alone, as a payment carries it."""
    threshold = matcher.settings.review_threshold
    screening = getattr(matcher, "screening", None)
    outcomes: list[Outcome] = []
    for q in queries:
        flagged = False
        if screening is not None:
            result = screening(q.query, limit=50)
            hits, flagged = result.hits, bool(result.flags)
        else:  # an engine without flags (main before issue #17)
            hits = matcher.screen(q.query, limit=50)
        ids = {h.entity_id for h in hits if h.score >= threshold}
        hit = q.entity_id in ids if q.entity_id is not None else bool(ids)
        outcomes.append(Outcome(q, hit, flagged))
    return outcomes


def _share(values: Sequence[bool]) -> str:
    return f"{sum(values) / len(values):6.1%} ({sum(values)}/{len(values)})" if values else "-"


def report(outcomes: Sequence[Outcome], show: int) -> None:
    """Per kind and overall: share of listed names found (and found or flagged), share of
    common names hit (and flagged)."""
    by_kind: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        by_kind[o.query.kind].append(o)
    print(
        f"{'disguise':<12}{'listed found':>20}{'found or flagged':>20}"
        f"{'common hit (FP)':>20}{'common flagged':>20}"
    )
    for kind in (*KINDS, "overall"):
        rows = outcomes if kind == "overall" else by_kind[kind]
        listed = [o for o in rows if o.query.entity_id is not None]
        common = [o for o in rows if o.query.entity_id is None]
        print(
            f"{kind:<12}{_share([o.hit for o in listed]):>20}"
            f"{_share([o.hit or o.flagged for o in listed]):>20}"
            f"{_share([o.hit for o in common]):>20}{_share([o.flagged for o in common]):>20}"
        )
    misses = [o for o in outcomes if o.query.entity_id is not None and not o.hit]
    false = [o for o in outcomes if o.query.entity_id is None and o.hit]
    for o in misses[:show]:
        print(f"  missed [{o.query.kind}] {o.query.query!r} <- {o.query.plain!r}")
    for o in false[:show]:
        print(f"  false positive [{o.query.kind}] {o.query.query!r} <- {o.query.plain!r}")


def main(argv: Sequence[str] | None = None) -> None:
    """Build the disguise set, screen it, print the shares."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1] if __doc__ else None)
    parser.add_argument("--names", type=int, default=60, help="listed names to disguise")
    parser.add_argument("--negatives", type=int, default=60, help="common names to disguise")
    parser.add_argument("--show", type=int, default=10, help="misses/false positives to print")
    args = parser.parse_args(argv)
    watch_list = load_ofac(labelled.SANCTIONS / "ofac-2021")
    matcher = Matcher([watch_list])
    queries = disguise_set(watch_list, matcher, names=args.names, negatives=args.negatives)
    start = time.perf_counter()
    outcomes = screen_all(matcher, queries)
    elapsed = time.perf_counter() - start
    print(
        f"disguise set: {len(queries)} queries ({args.names} listed and {args.negatives} common "
        f"names, plain and {len(KINDS) - 1} disguises each) in {elapsed:.1f}s; "
        f"review threshold {matcher.settings.review_threshold}"
    )
    report(outcomes, args.show)


if __name__ == "__main__":
    main()
