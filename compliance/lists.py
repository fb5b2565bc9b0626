"""Watch lists (sanctions, PEP) behind one interface, and their loaders.

A list is a name, a version (so every screening result records exactly what it was screened
against) and a sequence of entities. Loaders exist for OFAC's official CSV files (sdn.csv,
alt.csv, add.csv) and for a small PEP CSV.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

import pycountry

NULL = "-0-"
DEFAULT_PEP_PATH = Path(__file__).resolve().parent / "data" / "pep-sample.csv"


class EntityType(StrEnum):
    """What a listed entity is."""

    INDIVIDUAL = "individual"
    ENTITY = "entity"
    VESSEL = "vessel"
    AIRCRAFT = "aircraft"


class NameType(StrEnum):
    """Whether a name is the primary one or an alias (OFAC alt_type)."""

    PRIMARY = "primary"
    AKA = "aka"
    FKA = "fka"
    NKA = "nka"


@dataclass(frozen=True)
class EntityName:
    """One name of a listed entity, as published."""

    name: str
    name_type: NameType = NameType.PRIMARY


@dataclass(frozen=True)
class ListEntity:
    """A listed person, organisation, vessel or aircraft.

    `names[0]` is the primary name; the rest are aliases. `countries` are ISO 3166-1 alpha-2
    codes where the published country could be mapped (unmappable places such as "Region:
    Crimea" are left out). `birth_years` is empty when unknown.
    """

    id: str
    type: EntityType
    names: tuple[EntityName, ...]
    countries: frozenset[str] = frozenset()
    programs: tuple[str, ...] = ()
    birth_years: frozenset[int] = frozenset()
    remarks: str = ""

    @property
    def primary_name(self) -> str:
        """The entity's primary (listed) name."""
        return self.names[0].name

    @property
    def aliases(self) -> tuple[EntityName, ...]:
        """All names except the primary one."""
        return self.names[1:]


@runtime_checkable
class WatchList(Protocol):
    """Anything the matcher can screen against."""

    @property
    def name(self) -> str:
        """Short list name, e.g. "OFAC-SDN"."""
        ...

    @property
    def version(self) -> str:
        """Identifies the exact content (source name plus a content hash)."""
        ...

    @property
    def entities(self) -> Sequence[ListEntity]:
        """All listed entities."""
        ...


@dataclass(frozen=True)
class StaticWatchList:
    """An immutable, in-memory watch list."""

    name: str
    version: str
    entities: tuple[ListEntity, ...]
    # SHA-256 (hex) of the published bytes the list was read from: what an operator pins
    # (PAYMENTS_LIST_SANCTIONS_SHA256); `version` carries only a prefix of it
    digest: str = field(default="", compare=False)
    _by_id: dict[str, ListEntity] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {e.id: e for e in self.entities})

    def __len__(self) -> int:
        return len(self.entities)

    def __iter__(self) -> Iterator[ListEntity]:
        return iter(self.entities)

    def get(self, entity_id: str) -> ListEntity | None:
        """Return the entity with `entity_id`, if listed."""
        return self._by_id.get(entity_id)


# OFAC spells some countries its own way; pycountry resolves the rest.
_COUNTRY_OVERRIDES = {
    "russia": "RU",
    "korea, north": "KP",
    "korea, south": "KR",
    "turkey": "TR",
    "burma": "MM",
    "bahamas, the": "BS",
    "the gambia": "GM",
    "congo, democratic republic of the": "CD",
    "congo, republic of the": "CG",
    "cote d ivoire": "CI",
    "brunei": "BN",
    "macau": "MO",
    "man, isle of": "IM",
    "kosovo": "XK",
    "west bank": "PS",
    "palestinian": "PS",
    "region: gaza": "PS",
    "netherlands antilles": "AN",
    "iran": "IR",
    "syria": "SY",
    "venezuela": "VE",
    "vietnam": "VN",
    "laos": "LA",
    "bolivia": "BO",
    "tanzania": "TZ",
    "moldova": "MD",
    "taiwan": "TW",
}
_country_cache: dict[str, str | None] = {}


def country_code(value: str | None) -> str | None:
    """Map a country name ("Korea, North", "Germany") or ISO alpha-2/alpha-3 code to alpha-2.

    Returns None for empty or unknown values (e.g. "undetermined", "Region: Crimea").
    """
    if value is None:
        return None
    key = value.strip().casefold()
    if not key or key == NULL:
        return None
    if key in _country_cache:
        return _country_cache[key]
    code: str | None = _COUNTRY_OVERRIDES.get(key)
    if code is None:
        try:
            code = str(pycountry.countries.lookup(value.strip()).alpha_2)
        except LookupError:
            code = None
    _country_cache[key] = code
    return code


_NATIONALITY = re.compile(r"\b(?:nationality|citizen)\s+([^;]+?)\s*(?:;|\.?$)", re.IGNORECASE)
_DOB = re.compile(r"\bDOB\b([^;]*)", re.IGNORECASE)
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")


def parse_birth_years(remarks: str) -> frozenset[int]:
    """Extract birth years from OFAC remarks ("DOB 12 Jan 1960; alt. DOB 1961", "DOB circa
    1960", "DOB 1958 to 1960" - a range yields every year in it)."""
    years: set[int] = set()
    for match in _DOB.finditer(remarks):
        found = [int(y) for y in _YEAR.findall(match.group(1))]
        if len(found) == 2 and " to " in match.group(1) and 0 <= found[1] - found[0] <= 20:
            years.update(range(found[0], found[1] + 1))
        else:
            years.update(found)
    return frozenset(years)


def parse_nationalities(remarks: str) -> frozenset[str]:
    """ISO alpha-2 codes of "nationality X" / "citizen X" mentions in OFAC remarks."""
    codes = (country_code(m.group(1)) for m in _NATIONALITY.finditer(remarks))
    return frozenset(c for c in codes if c)


def _clean(value: str) -> str:
    value = value.strip()
    return "" if value == NULL else value


def _rows(path: Path) -> Iterator[list[str]]:
    # OFAC files are ASCII with a trailing DOS end-of-file byte (0x1A) on the last line
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        for row in csv.reader(handle):
            if len(row) >= 2 and row[0].strip().isdigit():
                yield row


def _entity_type(raw: str) -> EntityType:
    raw = _clean(raw).casefold()
    return EntityType(raw) if raw in {"individual", "vessel", "aircraft"} else EntityType.ENTITY


def load_ofac(directory: Path, *, name: str = "OFAC-SDN") -> StaticWatchList:
    """Load an OFAC SDN edition from `directory` (sdn.csv required; alt.csv, add.csv optional).

    The version is "<directory name>:<sha256 prefix of the files read>"; the full digest is
    that of sdn.csv, alt.csv and add.csv concatenated in this order (those present), i.e.
    `cat sdn.csv alt.csv add.csv | sha256sum`.
    """
    digest = hashlib.sha256()
    sdn_path = directory / "sdn.csv"
    digest.update(sdn_path.read_bytes())

    aliases: dict[str, list[EntityName]] = defaultdict(list)
    alt_path = directory / "alt.csv"
    if alt_path.exists():
        digest.update(alt_path.read_bytes())
        for row in _rows(alt_path):
            if len(row) < 4 or not _clean(row[3]):
                continue
            kind = _clean(row[2]).casefold().replace(".", "")
            alt_type = NameType(kind) if kind in {"aka", "fka", "nka"} else NameType.AKA
            aliases[row[0].strip()].append(EntityName(_clean(row[3]), alt_type))

    countries: dict[str, set[str]] = defaultdict(set)
    add_path = directory / "add.csv"
    if add_path.exists():
        digest.update(add_path.read_bytes())
        for row in _rows(add_path):
            code = country_code(row[4]) if len(row) > 4 else None
            if code:
                countries[row[0].strip()].add(code)

    entities: list[ListEntity] = []
    for row in _rows(sdn_path):
        if len(row) < 4 or not _clean(row[1]):
            continue
        entity_id = row[0].strip()
        remarks = _clean(row[11]) if len(row) > 11 else ""
        programs = tuple(p.strip() for p in _clean(row[3]).split(";") if p.strip())
        primary = EntityName(_clean(row[1]), NameType.PRIMARY)
        entities.append(
            ListEntity(
                id=entity_id,
                type=_entity_type(row[2]),
                names=(primary, *aliases.get(entity_id, ())),
                # addresses and stated nationalities/citizenships both tie an entity to a country
                countries=frozenset(countries.get(entity_id, ())) | parse_nationalities(remarks),
                programs=programs,
                birth_years=parse_birth_years(remarks),
                remarks=remarks,
            )
        )
    full = digest.hexdigest()
    return StaticWatchList(name, f"{directory.name}:{full[:12]}", tuple(entities), full)


def load_pep_csv(path: Path = DEFAULT_PEP_PATH, *, name: str = "PEP") -> StaticWatchList:
    """Load a PEP list from a CSV with columns id,name,country,position,birth_year.

    Names are written "Given SURNAME"; every entry is an individual whose "program" is
    "PEP"; the position is kept in `remarks`. The version is "<file stem>:<sha256 prefix>".
    """
    data = path.read_bytes()
    entities: list[ListEntity] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            year = (row.get("birth_year") or "").strip()
            code = country_code(row.get("country"))
            entities.append(
                ListEntity(
                    id=row["id"].strip(),
                    type=EntityType.INDIVIDUAL,
                    names=(EntityName(row["name"].strip()),),
                    countries=frozenset({code}) if code else frozenset(),
                    programs=("PEP",),
                    birth_years=frozenset({int(year)}) if year.isdigit() else frozenset(),
                    remarks=(row.get("position") or "").strip(),
                )
            )
    full = hashlib.sha256(data).hexdigest()
    return StaticWatchList(name, f"{path.stem}:{full[:12]}", tuple(entities), full)
