"""nomenklatura's matchers (`logic-v2`, `ofac`) over the same list, for the screening benchmark.

nomenklatura compares two followthemoney entities at a time and has no index of its own (in
yente, a search engine retrieves candidates first). Two ways of running it are measured:

* blocked: the query is compared with the top-k entities of a simple retrieval step (every
  entity having a name part with Jaro-Winkler >= 0.75 to a query part, ranked by the
  length-weighted share of query parts matched). The retrieval step is not timed: nomenklatura
  gets it for free, as if a search engine answered instantly.
* full list: the query is compared with every entity (a few queries only; it is slow).

Installed only for the benchmark (`pip install -e '.[bench-screening]'`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler

from compliance.lists import EntityType, StaticWatchList
from compliance.names import name_tokens, reorder_surname_first

ALGORITHMS = ("logic-v2", "ofac")
_SCHEMAS = {
    EntityType.INDIVIDUAL: "Person",
    EntityType.ENTITY: "Organization",
    EntityType.VESSEL: "Vessel",
    EntityType.AIRCRAFT: "Airplane",
}
RETRIEVAL_FLOOR = 0.75


@dataclass(frozen=True)
class NomenklaturaRun:
    """Scores and timings of one algorithm over a query set."""

    algorithm: str
    scores: list[dict[str, float]]
    """Per query: entity id -> score, for the entities it was compared with."""
    latencies: list[float]
    """Seconds per query (comparisons only)."""
    pairs: int


def _entity(schema: str, entity_id: str, names: Sequence[str]) -> Any:
    from followthemoney import model  # type: ignore[import-not-found, unused-ignore]

    entity = model.make_entity(schema)
    entity.id = entity_id
    for name in names:
        entity.add("name", name)
    return entity


class Retrieval:
    """Candidate retrieval for nomenklatura: entities sharing a similar name part."""

    def __init__(self, watch_list: StaticWatchList) -> None:
        """Index every name part of every entity."""
        postings: dict[str, set[str]] = defaultdict(set)
        for entity in watch_list.entities:
            individual = entity.type is EntityType.INDIVIDUAL
            for name in entity.names:
                for token in name_tokens(name.name, individual=individual):
                    postings[token].add(entity.id)
        self._vocabulary = list(postings)
        self._postings = postings

    def top(self, query: str, k: int) -> list[str]:
        """The `k` entities whose name parts cover most of the query (by length)."""
        tokens = name_tokens(query)
        coverage: dict[str, dict[int, float]] = defaultdict(dict)
        for position, token in enumerate(tokens):
            for choice, score, _ in process.extract(
                token,
                self._vocabulary,
                scorer=JaroWinkler.similarity,
                score_cutoff=RETRIEVAL_FLOOR,
                limit=None,
            ):
                for entity_id in self._postings[choice]:
                    best = coverage[entity_id]
                    best[position] = max(best.get(position, 0.0), score)
        weights = [len(t) for t in tokens]
        ranked = sorted(
            coverage,
            key=lambda e: (-sum(s * weights[p] for p, s in coverage[e].items()), e),
        )
        return ranked[:k]


class Nomenklatura:
    """One nomenklatura algorithm with the list converted to followthemoney entities."""

    def __init__(self, algorithm: str, watch_list: StaticWatchList) -> None:
        """Convert every entity once (published names, plus "Given SURNAME" for individuals:
        nomenklatura takes the best of an entity's names, so extra spellings only help it)."""
        from nomenklatura.matching import get_algorithm  # type: ignore[import-not-found, unused-ignore]

        found = get_algorithm(algorithm)
        if found is None:
            raise ValueError(f"nomenklatura has no algorithm {algorithm!r}")
        self.name = algorithm
        self._algorithm = found
        self._config = found.default_config()
        self._entities: dict[str, Any] = {}
        self._queries = 0
        for entity in watch_list.entities:
            names: list[str] = []
            for entity_name in entity.names:
                names.append(entity_name.name)
                if entity.type is EntityType.INDIVIDUAL and "," in entity_name.name:
                    names.append(reorder_surname_first(entity_name.name))
            self._entities[entity.id] = _entity(
                _SCHEMAS[entity.type], entity.id, list(dict.fromkeys(names))
            )

    def query_entity(self, query: str, individual: bool) -> Any:
        """The query as nomenklatura wants it (the party type is given: it helps nomenklatura,
        our matcher screens the bare name). Each gets its own id: nomenklatura caches name
        analysis by entity id."""
        self._queries += 1
        schema = "Person" if individual else "Organization"
        return _entity(schema, f"query-{self._queries}", [query])

    def score(self, query: Any, entity_ids: Sequence[str]) -> dict[str, float]:
        """Score `query` against the given entities."""
        compare = self._algorithm.compare
        config = self._config
        return {
            entity_id: float(compare(query, self._entities[entity_id], config).score)
            for entity_id in entity_ids
        }

    def run(
        self, queries: Sequence[tuple[str, bool]], candidates: Sequence[Sequence[str]]
    ) -> NomenklaturaRun:
        """Score every query against its candidates, timing the comparisons only."""
        scores: list[dict[str, float]] = []
        latencies: list[float] = []
        pairs = 0
        for (text, individual), entity_ids in zip(queries, candidates, strict=True):
            query = self.query_entity(text, individual)
            start = time.perf_counter()
            scores.append(self.score(query, entity_ids))
            latencies.append(time.perf_counter() - start)
            pairs += len(entity_ids)
        return NomenklaturaRun(self.name, scores, latencies, pairs)

    def all_entity_ids(self) -> list[str]:
        """Every entity id (the full-list comparison)."""
        return list(self._entities)


def pair_scorer(algorithm: str) -> Any:
    """Score two raw names with `algorithm` (0..100), for the OFAC calibration pairs."""
    from nomenklatura.matching import get_algorithm  # type: ignore[import-not-found, unused-ignore]

    found = get_algorithm(algorithm)
    if found is None:
        raise ValueError(f"nomenklatura has no algorithm {algorithm!r}")
    config = found.default_config()
    pairs = 0

    def score(query: str, listed: str) -> float:
        nonlocal pairs
        pairs += 1  # unique ids: nomenklatura caches name analysis by entity id
        schema = "Person" if "," in listed else "LegalEntity"
        left = _entity("LegalEntity", f"query-{pairs}", [query])
        right = _entity(schema, f"listed-{pairs}", [listed])
        return 100.0 * float(found.compare(left, right, config).score)

    return score
