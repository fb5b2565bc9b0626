"""Sanctions screening against OFAC lists in the official CSV format (sdn.csv, alt.csv).

This is the walking-skeleton matcher: exact and near-exact name matches (token order,
case, accents and punctuation ignored; a token-sort similarity of at least
`near_exact_threshold`). Candidates come from an index on name tokens, so a query never
scores the whole list. The full Jaro-Winkler matcher replaces the scoring later.
"""

from __future__ import annotations

import csv
import hashlib
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz

NULL = "-0-"


@dataclass(frozen=True)
class ListEntry:
    """One name (primary or alias) of a listed entity."""

    entity_id: str
    name: str
    normalized: str
    sdn_type: str
    programs: str


@dataclass(frozen=True)
class Hit:
    """A potential match, explained: which list, which entity, which name, how close."""

    list_name: str
    list_version: str
    entity_id: str
    matched_name: str
    score: float


def normalize(name: str) -> str:
    """Fold case and accents, drop punctuation, and sort tokens ("SURNAME, Given" order-free)."""
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    tokens = re.sub(r"[^0-9a-z]+", " ", ascii_only.casefold()).split()
    return " ".join(sorted(tokens))


def _clean(value: str) -> str:
    value = value.strip()
    return "" if value == NULL else value


class SanctionsList:
    """An OFAC list edition loaded from a directory with `sdn.csv` and `alt.csv`."""

    def __init__(self, directory: Path, near_exact_threshold: float = 95.0) -> None:
        self.directory = directory
        self.name = "OFAC-SDN"
        self.near_exact_threshold = near_exact_threshold
        self.entries: list[ListEntry] = []
        self._by_token: dict[str, list[int]] = defaultdict(list)
        digest = hashlib.sha256()
        primary: dict[str, tuple[str, str]] = {}
        sdn_path = directory / "sdn.csv"
        digest.update(sdn_path.read_bytes())
        with sdn_path.open(newline="", encoding="utf-8", errors="replace") as handle:
            for row in csv.reader(handle):
                if len(row) < 4 or not row[0].strip().isdigit():
                    continue
                entity_id, name = row[0].strip(), _clean(row[1])
                sdn_type, programs = _clean(row[2]) or "entity", _clean(row[3])
                primary[entity_id] = (sdn_type, programs)
                self._add(entity_id, name, sdn_type, programs)
        alt_path = directory / "alt.csv"
        if alt_path.exists():
            digest.update(alt_path.read_bytes())
            with alt_path.open(newline="", encoding="utf-8", errors="replace") as handle:
                for row in csv.reader(handle):
                    if len(row) < 4 or row[0].strip() not in primary:
                        continue
                    sdn_type, programs = primary[row[0].strip()]
                    self._add(row[0].strip(), _clean(row[3]), sdn_type, programs)
        # the version names the exact content screened against (recorded with every result)
        self.version = f"{directory.name}:{digest.hexdigest()[:12]}"

    def _add(self, entity_id: str, name: str, sdn_type: str, programs: str) -> None:
        normalized = normalize(name)
        if not normalized:
            return
        index = len(self.entries)
        self.entries.append(ListEntry(entity_id, name, normalized, sdn_type, programs))
        for token in set(normalized.split()):
            self._by_token[token].append(index)

    def screen(self, name: str) -> list[Hit]:
        """Return the entries whose name matches `name` exactly or near-exactly."""
        query = normalize(name)
        if not query:
            return []
        tokens = query.split()
        # a near-exact match shares at least one token; take the rarest token's postings
        # plus the first token's to stay cheap on common tokens
        candidate_ids: set[int] = set()
        for token in sorted(tokens, key=lambda t: len(self._by_token.get(t, ())))[:2]:
            candidate_ids.update(self._by_token.get(token, ()))
        best: dict[str, Hit] = {}
        for index in candidate_ids:
            entry = self.entries[index]
            score = fuzz.ratio(query, entry.normalized)
            if score < self.near_exact_threshold:
                continue
            hit = Hit(self.name, self.version, entry.entity_id, entry.name, round(score / 100, 4))
            if entry.entity_id not in best or best[entry.entity_id].score < hit.score:
                best[entry.entity_id] = hit
        return sorted(best.values(), key=lambda h: (-h.score, h.entity_id))
