"""Calibrate the sanctions name matcher against OFAC's own Sanctions List Search scores.

Reads compliance/data/sanctions/ofac-search-scores.csv (query_name, result_name, ofac_score
0-100, or -1 when OFAC's tool returned nothing for the pair), scores every pair with the
matcher's pair-scoring function and with a naive baseline (rapidfuzz token_sort_ratio), and
prints agreement figures side by side; then times screening throughput against the full
ofac-2021 list. Prints figures only - the regression floor lives in tests/unit/test_matcher.py.

    .venv/bin/python bench/screening_calibration.py [--grid]
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rapidfuzz import fuzz, utils

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as a plain script from anywhere
    sys.path.insert(0, str(ROOT))

from compliance.lists import load_ofac  # noqa: E402
from compliance.matcher import Matcher, MatcherSettings, score_names  # noqa: E402
from kernel.settings import BUNDLED_SANCTIONS  # noqa: E402

SANCTIONS = BUNDLED_SANCTIONS
SCORES_CSV = SANCTIONS / "ofac-search-scores.csv"
THRESHOLDS = (85, 90, 95)
# The first cut, before calibration: watchman's weighting (no conflict weighting, no
# single-token discount, softer leftover-query penalty) - kept to report before/after.
UNTUNED = MatcherSettings(
    review_threshold=0.86,
    min_score=0.86,
    conflict_weight=1.0,
    unmatched_query_weight=0.3,
    single_pair_factor=1.0,
)

# Names of people and companies that should not be on the SDN list, for throughput of the
# common case (a clean party). Combined at random.
_GIVEN = [
    "Anna",
    "Peter",
    "Laura",
    "Thomas",
    "Julia",
    "Michael",
    "Sophie",
    "Daniel",
    "Emma",
    "Lukas",
    "Claire",
    "Pierre",
    "Lucia",
    "Marco",
    "Ingrid",
    "Sven",
    "Hannah",
    "Oliver",
    "Charlotte",
    "James",
    "Emily",
    "Robert",
    "Chloe",
    "Henrik",
    "Maja",
    "Jonas",
    "Elena",
    "Matteo",
    "Sarah",
    "David",
]
_SURNAMES = [
    "Mueller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Dubois",
    "Lefebvre",
    "Moreau",
    "Rossi",
    "Bianchi",
    "Romano",
    "Jansen",
    "Devries",
    "Nilsson",
    "Lindqvist",
    "Johansson",
    "Novak",
    "Kowalczyk",
    "Murphy",
    "Walsh",
    "Thompson",
    "Harris",
    "Clarke",
    "Baker",
    "Turner",
]
_COMPANY_WORDS = [
    "Alpine",
    "Harbour",
    "Meadow",
    "Granite",
    "Silver",
    "Northwind",
    "Bluebell",
    "Orchard",
    "Copper",
    "Lakeside",
    "Summit",
    "Riverside",
    "Evergreen",
    "Maple",
    "Beacon",
]
_COMPANY_KINDS = [
    "Bakery",
    "Logistics",
    "Consulting",
    "Textiles",
    "Dental",
    "Software",
    "Garden",
    "Printing",
]
_SUFFIXES = ("GmbH", "Ltd", "LLC", "AG", "BV", "Oy", "")


@dataclass(frozen=True)
class Pair:
    """One row of the OFAC calibration file."""

    query: str
    result: str
    ofac_score: int  # -1: OFAC's search did not return the pair


@dataclass(frozen=True)
class Agreement:
    """How well one scorer agrees with OFAC's scores."""

    scored_pairs: int
    pearson: float
    spearman: float
    mae_points: float
    decision_agreement: dict[int, float]  # threshold -> share of pairs decided alike
    unreturned_flagged: int  # pairs OFAC did not return that this scorer puts >= 85


def load_pairs(path: Path = SCORES_CSV) -> list[Pair]:
    """Read the OFAC calibration pairs."""
    with path.open(newline="", encoding="utf-8") as handle:
        return [
            Pair(row["query_name"], row["result_name"], int(row["ofac_score"]))
            for row in csv.DictReader(handle)
        ]


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):  # ties share their average rank
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson correlation (0.0 when either side is constant)."""
    try:
        return statistics.correlation(xs, ys)
    except statistics.StatisticsError:
        return 0.0


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson over average ranks)."""
    return pearson(_ranks(xs), _ranks(ys))


def agreement(pairs: Sequence[Pair], scorer: Callable[[str, str], float]) -> Agreement:
    """Compare `scorer` (0..100) with OFAC's scores on `pairs`.

    Correlations and MAE use the pairs OFAC scored; decision agreement also counts the
    pairs OFAC did not return, as OFAC-below-threshold.
    """
    ours = [scorer(p.query, p.result) for p in pairs]
    scored = [(o, p.ofac_score) for o, p in zip(ours, pairs, strict=True) if p.ofac_score >= 0]
    xs = [float(o) for o, _ in scored]
    ys = [float(s) for _, s in scored]
    decisions = {
        t: sum((o >= t) == (p.ofac_score >= t) for o, p in zip(ours, pairs, strict=True))
        / len(pairs)
        for t in THRESHOLDS
    }
    unreturned = sum(
        o >= THRESHOLDS[0] for o, p in zip(ours, pairs, strict=True) if p.ofac_score < 0
    )
    return Agreement(
        scored_pairs=len(scored),
        pearson=pearson(xs, ys),
        spearman=spearman(xs, ys),
        mae_points=statistics.fmean(abs(x - y) for x, y in zip(xs, ys, strict=True)),
        decision_agreement=decisions,
        unreturned_flagged=unreturned,
    )


def matcher_scorer(settings: MatcherSettings) -> Callable[[str, str], float]:
    """The matcher's pair score on OFAC's 0-100 scale."""
    return lambda q, r: 100.0 * score_names(q, r, settings).score


def baseline_scorer(query: str, result: str) -> float:
    """Naive baseline: rapidfuzz token_sort_ratio on lower-cased, punctuation-free names."""
    return fuzz.token_sort_ratio(query, result, processor=utils.default_process)


def print_table(rows: Sequence[tuple[str, Agreement]]) -> None:
    header = f"{'scorer':<28}{'pairs':>6}{'pearson':>9}{'spearman':>9}{'MAE':>7}"
    header += "".join(f"{'agree@' + str(t):>10}" for t in THRESHOLDS) + f"{'unret>=85':>11}"
    print(header)
    for label, a in rows:
        line = f"{label:<28}{a.scored_pairs:>6}{a.pearson:>9.3f}{a.spearman:>9.3f}"
        line += f"{a.mae_points:>7.1f}"
        line += "".join(f"{a.decision_agreement[t]:>10.1%}" for t in THRESHOLDS)
        print(line + f"{a.unreturned_flagged:>11}")


def _grid(pairs: Sequence[Pair]) -> None:
    print("\nsensitivity (spearman / agree@85) over the two coverage weights:")
    base = MatcherSettings()
    for wq in (0.0, 0.15, 0.3, 0.5, 1.0):
        cells = []
        for wl in (0.0, 0.1, 0.15, 0.3):
            settings = replace(base, unmatched_query_weight=wq, unmatched_list_weight=wl)
            a = agreement(pairs, matcher_scorer(settings))
            cells.append(f"wl={wl:<4} {a.spearman:.3f}/{a.decision_agreement[85]:.1%}")
        print(f"  wq={wq:<4} " + "  ".join(cells))


def _clean_names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    for _ in range(count):
        if rng.random() < 0.7:
            names.append(f"{rng.choice(_GIVEN)} {rng.choice(_SURNAMES)}")
        else:
            words = f"{rng.choice(_COMPANY_WORDS)} {rng.choice(_COMPANY_KINDS)}"
            names.append(f"{words} {rng.choice(_SUFFIXES)}".strip())
    return names


def _throughput(matcher: Matcher, queries: Sequence[str]) -> tuple[float, float, float]:
    """Queries per second, mean candidates scored, p99 latency in ms."""
    latencies: list[float] = []
    candidates = 0
    for query in queries:
        candidates += matcher.candidate_count(query)
    start = time.perf_counter()
    for query in queries:
        t = time.perf_counter()
        matcher.screen(query)
        latencies.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, math.ceil(0.99 * len(latencies)) - 1)]
    return len(queries) / elapsed, candidates / len(queries), p99 * 1000


def _typo(rng: random.Random, name: str) -> str:
    i = rng.randrange(len(name))
    if rng.random() < 0.5:
        return name[:i] + name[i + 1 :]
    return name[:i] + rng.choice("aeiounr") + name[i:]


def _threshold_table(
    pairs: Sequence[Pair], matcher: Matcher, rng: random.Random, count: int
) -> None:
    """Per candidate review threshold: agreement with OFAC's >= 85 decisions, recall of the
    right entity for misspelt / reordered listed names, and hit rate on clean names."""
    ours = [score_names(p.query, p.result, matcher.settings).score for p in pairs]
    entities = list(matcher.lists[0].entities)
    probes: list[tuple[str, str]] = []
    for _ in range(count):
        entity = rng.choice(entities)
        name = rng.choice(entity.names).name
        tokens = name.replace(",", " ").split()
        rng.shuffle(tokens)
        probes.append((entity.id, _typo(rng, " ".join(tokens))))
    probe_scores = []
    for entity_id, query in probes:
        hits = [h.score for h in matcher.screen(query, limit=50) if h.entity_id == entity_id]
        probe_scores.append(hits[0] if hits else 0.0)
    clean_best = [
        max((h.score for h in matcher.screen(q)), default=0.0) for q in _clean_names(rng, count)
    ]
    print(
        f"\nreview threshold (min_score={matcher.settings.min_score}; scores below it are "
        "not returned, so recall/clean figures are floored there)"
    )
    print(f"{'threshold':>10}{'agree@85':>10}{'recall typo+reorder':>21}{'clean hit rate':>16}")
    for t in (0.80, 0.82, 0.84, 0.86, 0.88, 0.90, 0.92):
        agree = sum((o >= t) == (p.ofac_score >= 85) for o, p in zip(ours, pairs, strict=True))
        recall = sum(sc >= t for sc in probe_scores) / len(probes)
        clean_rate = sum(sc >= t for sc in clean_best) / len(clean_best)
        print(f"{t:>10.2f}{agree / len(pairs):>10.1%}{recall:>21.1%}{clean_rate:>16.1%}")


def main(argv: Sequence[str] | None = None) -> None:
    """Print calibration and throughput figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--grid", action="store_true", help="also print a weight sensitivity grid")
    parser.add_argument("--thresholds", action="store_true", help="print a threshold table")
    parser.add_argument("--queries", type=int, default=500, help="queries per throughput run")
    args = parser.parse_args(argv)

    pairs = load_pairs()
    settings = MatcherSettings()
    returned = sum(p.ofac_score >= 0 for p in pairs)
    print(
        f"{len(pairs)} pairs from {SCORES_CSV.name} ({len(pairs) - returned} not returned by OFAC)"
    )
    print_table(
        [
            ("matcher (defaults)", agreement(pairs, matcher_scorer(settings))),
            ("matcher (untuned start)", agreement(pairs, matcher_scorer(UNTUNED))),
            ("baseline token_sort_ratio", agreement(pairs, baseline_scorer)),
        ]
    )
    if args.grid:
        _grid(pairs)

    watch_list = load_ofac(SANCTIONS / "ofac-2021")
    start = time.perf_counter()
    matcher = Matcher([watch_list], settings)
    print(
        f"\nindexed {matcher.name_count} names of {len(watch_list.entities)} entities "
        f"in {time.perf_counter() - start:.2f}s"
    )
    rng = random.Random(20210101)
    if args.thresholds:
        low = replace(settings, min_score=0.80, review_threshold=0.80)
        _threshold_table(pairs, Matcher([watch_list], low), rng, args.queries)
    listed = [rng.choice(watch_list.entities).primary_name for _ in range(args.queries)]
    clean = _clean_names(rng, args.queries)
    for label, queries in (("listed names", listed), ("clean names", clean)):
        qps, mean_candidates, p99 = _throughput(matcher, queries)
        share = mean_candidates / matcher.name_count
        print(
            f"{label:<13} {qps:8.0f} queries/s  mean candidates {mean_candidates:7.1f} "
            f"({share:.1%} of names)  p99 {p99:.1f} ms"
        )
    flagged = sum(bool(matcher.screen(name)) for name in clean)
    print(f"clean names with a hit >= review threshold: {flagged}/{len(clean)}")


if __name__ == "__main__":
    main()
