"""Sanctions screening benchmark (`make bench-screening`): our matcher against nomenklatura.

On the OFAC 2021 list with all aliases, in one run:

1. our matcher: index build time, p50/p99 latency per query and queries/s over the labelled
   queries (bench/screening_labelled.py: listed names with typos, transliterations, reordered
   and dropped parts, changed legal forms; common names that are not listed), with the work
   the index saves (candidates proposed, names fully scored);
   Cold figures clear the matcher's cache of token lookups before every query; the speed
   ratios are against them;
2. the same queries through nomenklatura's `logic-v2` and `ofac` algorithms, compared with
   the top-k entities of a retrieval step they get for free, and with the whole list for a
   few queries (see bench/screening_nomenklatura.py): latency, and the speed ratio;
3. recall and false-positive rate of each matcher on the labelled set, at its threshold and
   over a threshold sweep, and how often each nomenklatura algorithm and ours agree;
4. agreement of each with OFAC's own search scores (compliance/data/sanctions).

Timings share a 2-core machine with whatever else runs: compare the ratios, which are
measured side by side in this one run, rather than the absolute figures.

    .venv/bin/python bench/screening_bench.py [--per-kind 120] [--negatives 600] [--top-k 50]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "bench"):
    if str(_path) not in sys.path:  # runnable as a plain script from anywhere
        sys.path.insert(0, str(_path))

import screening_calibration as calibration  # noqa: E402
import screening_labelled as labelled  # noqa: E402
import screening_nomenklatura as nk  # noqa: E402

from compliance.lists import StaticWatchList, load_ofac  # noqa: E402
from compliance.matcher import Matcher, MatcherSettings  # noqa: E402

SWEEP = (0.70, 0.75, 0.80, 0.84, 0.86, 0.88, 0.90, 0.92, 0.95)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of `values` (share in 0..1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def _latency_line(label: str, latencies: Sequence[float], note: str = "") -> str:
    total = sum(latencies)
    return (
        f"{label:<34}{1000 * percentile(latencies, 0.5):>9.3f}"
        f"{1000 * percentile(latencies, 0.99):>10.3f}"
        f"{1000 * statistics.fmean(latencies):>10.3f}{len(latencies) / total:>12.1f}  {note}"
    )


def best_scores(
    queries: Sequence[labelled.LabelledQuery], scores: Sequence[dict[str, float]]
) -> list[float]:
    """Per query: the expected entity's score (positives) or the best score (negatives)."""
    return [
        s.get(q.entity_id, 0.0) if q.entity_id is not None else max(s.values(), default=0.0)
        for q, s in zip(queries, scores, strict=True)
    ]


def rates(
    queries: Sequence[labelled.LabelledQuery], best: Sequence[float], threshold: float
) -> tuple[float, float, list[bool]]:
    """Recall, false-positive rate and per-query hit at `threshold`."""
    found = [b >= threshold for b in best]
    positive = [f for q, f in zip(queries, found, strict=True) if q.entity_id is not None]
    negative = [f for q, f in zip(queries, found, strict=True) if q.entity_id is None]
    return sum(positive) / len(positive), sum(negative) / len(negative), found


def _our_scores(
    matcher: Matcher, queries: Sequence[labelled.LabelledQuery], *, cold: bool
) -> tuple[list[dict[str, float]], list[float]]:
    scores: list[dict[str, float]] = []
    latencies: list[float] = []
    for q in queries:
        if cold:  # no token lookup remembered from earlier queries
            matcher.clear_caches()
        start = time.perf_counter()
        hits = matcher.screen(q.query, limit=50)
        latencies.append(time.perf_counter() - start)
        scores.append({h.entity_id: h.score for h in hits})
    return scores, latencies


def _print_sweep(
    label: str, queries: Sequence[labelled.LabelledQuery], best: Sequence[float]
) -> None:
    cells = []
    for t in SWEEP:
        recall, fp, _ = rates(queries, best, t)
        cells.append(f"{recall:.3f}/{fp:.3f}")
    print(f"{label:<22}" + "".join(f"{c:>13}" for c in cells))


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--per-kind", type=int, default=120, help="positives per kind")
    parser.add_argument("--negatives", type=int, default=600)
    parser.add_argument("--top-k", type=int, default=50, help="nomenklatura's candidates")
    parser.add_argument("--full-list-queries", type=int, default=4)
    parser.add_argument("--skip-nomenklatura", action="store_true")
    args = parser.parse_args(argv)

    watch_list: StaticWatchList = load_ofac(labelled.SANCTIONS / "ofac-2021")
    settings = MatcherSettings()
    start = time.perf_counter()
    matcher = Matcher([watch_list], settings)
    build = time.perf_counter() - start
    aliases = sum(len(e.aliases) for e in watch_list.entities)
    print(
        f"list {watch_list.version}: {len(watch_list.entities)} entities, {aliases} aliases, "
        f"{matcher.name_count} distinct names indexed in {build:.2f}s"
    )
    queries = labelled.labelled_set(
        watch_list, per_kind=args.per_kind, negative_count=args.negatives
    )
    positives = sum(q.entity_id is not None for q in queries)
    print(
        f"labelled queries: {len(queries)} ({positives} positives: "
        f"{args.per_kind} per kind x {len(labelled.POSITIVE_KINDS)} kinds; "
        f"{len(queries) - positives} negatives)\n"
    )

    for q in queries[:50]:  # warm caches (country lookups, interned strings) before timing
        matcher.screen(q.query)
    ours, our_latencies = _our_scores(matcher, queries, cold=True)
    _, warm_latencies = _our_scores(matcher, queries, cold=False)
    stats = [matcher.search_stats(q.query) for q in queries]
    low = Matcher([watch_list], replace(settings, min_score=0.70, review_threshold=0.70))
    our_best = best_scores(
        queries, [{h.entity_id: h.score for h in low.screen(q.query, limit=50)} for q in queries]
    )

    runs: dict[str, nk.NomenklaturaRun] = {}
    full: dict[str, list[float]] = {}
    retrieval_recall = 0.0
    if not args.skip_nomenklatura:
        retrieval = nk.Retrieval(watch_list)
        candidates = [retrieval.top(q.query, args.top_k) for q in queries]
        retrieved = [
            q.entity_id in c for q, c in zip(queries, candidates, strict=True) if q.entity_id
        ]
        retrieval_recall = sum(retrieved) / len(retrieved)
        pairs = [(q.query, q.individual) for q in queries]
        sample = list(range(0, len(queries), max(1, len(queries) // args.full_list_queries)))
        sample = sample[: args.full_list_queries]
        for name in nk.ALGORITHMS:
            algorithm = nk.Nomenklatura(name, watch_list)
            # warm-up, then the blocked run and a few full-list queries
            algorithm.run(pairs[:20], candidates[:20])
            runs[name] = algorithm.run(pairs, candidates)
            every = algorithm.all_entity_ids()
            full[name] = algorithm.run([pairs[i] for i in sample], [every] * len(sample)).latencies

    # --- speed --------------------------------------------------------------------------------
    print(f"{'latency per query':<34}{'p50 ms':>9}{'p99 ms':>10}{'mean ms':>10}{'queries/s':>12}")
    mean_candidates = statistics.fmean(s.candidates for s in stats)
    mean_scored = statistics.fmean(s.scored for s in stats)
    print(
        _latency_line(
            "ours (index, all aliases), cold",
            our_latencies,
            f"candidates {mean_candidates:.0f}, fully scored {mean_scored:.1f} "
            f"of {matcher.name_count} names",
        )
    )
    print(_latency_line("ours, token lookups cached", warm_latencies, "(repeated name parts)"))
    for label, subset in (
        ("  cold: listed-name variants", True),
        ("  cold: non-listed names", False),
    ):
        chosen = [
            lat
            for q, lat in zip(queries, our_latencies, strict=True)
            if (q.entity_id is not None) == subset
        ]
        print(_latency_line(label, chosen))
    our_mean = statistics.fmean(our_latencies)
    our_p50 = percentile(our_latencies, 0.5)
    for name, run in runs.items():
        mean = statistics.fmean(run.latencies)
        print(
            _latency_line(
                f"nomenklatura {name}, top-{args.top_k}",
                run.latencies,
                f"{run.pairs / len(queries):.0f} pairs/query; mean x{mean / our_mean:.0f}, "
                f"p50 x{percentile(run.latencies, 0.5) / our_p50:.0f} ours",
            )
        )
        full_mean = statistics.fmean(full[name])
        print(
            _latency_line(
                f"nomenklatura {name}, full list",
                full[name],
                f"{len(full[name])} queries x {len(watch_list.entities)} entities; "
                f"mean x{full_mean / our_mean:.0f} ours",
            )
        )
    if runs:
        print(
            f"(nomenklatura's top-{args.top_k} retrieval is not timed; it holds the expected "
            f"entity for {retrieval_recall:.1%} of the positives)"
        )

    # --- quality ------------------------------------------------------------------------------
    threshold = settings.review_threshold
    # the configured matcher's own hits decide (the sweep below uses a low-threshold copy)
    recall, fp, our_found = rates(queries, best_scores(queries, ours), threshold)
    by_kind = {
        kind: statistics.fmean(f for q, f in zip(queries, our_found, strict=True) if q.kind == kind)
        for kind in labelled.POSITIVE_KINDS
    }
    print(f"\n{'recall / false positives':<34}{'threshold':>10}{'recall':>9}{'FP rate':>9}")
    print(f"{'ours':<34}{threshold:>10.2f}{recall:>9.3f}{fp:>9.3f}")
    print("  recall by kind: " + ", ".join(f"{k} {v:.3f}" for k, v in by_kind.items()))
    bests: dict[str, list[float]] = {"ours": our_best}
    for name, run in runs.items():
        bests[name] = best_scores(queries, run.scores)
        for t in (0.70, 0.85):
            r, f, _ = rates(queries, bests[name], t)
            print(f"{'nomenklatura ' + name:<34}{t:>10.2f}{r:>9.3f}{f:>9.3f}")
    print("\nthreshold sweep (recall/FP rate):")
    print(f"{'':<22}" + "".join(f"{t:>13.2f}" for t in SWEEP))
    for label, best in bests.items():
        _print_sweep(label, queries, best)

    if runs:
        print(f"\nagreement with ours (at {threshold:.2f}) on hit / no hit per labelled query:")
        for name in runs:
            for t in (0.70, 0.85):
                _, _, theirs = rates(queries, bests[name], t)
                same = sum(a == b for a, b in zip(our_found, theirs, strict=True))
                print(f"  {name} at {t:.2f}: {same / len(queries):.1%}")

    # --- calibration against OFAC's own scores ------------------------------------------------
    pairs_csv = calibration.load_pairs()
    scorers: list[tuple[str, Callable[[str, str], float]]] = [
        ("ours", calibration.matcher_scorer(settings))
    ]
    if runs:
        scorers += [(f"nomenklatura {name}", nk.pair_scorer(name)) for name in runs]
    scorers.append(("baseline token_sort_ratio", calibration.baseline_scorer))
    print(f"\nagreement with OFAC's own search scores ({len(pairs_csv)} pairs):")
    calibration.print_table([(label, calibration.agreement(pairs_csv, s)) for label, s in scorers])


if __name__ == "__main__":
    main()
