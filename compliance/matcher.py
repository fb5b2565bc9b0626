"""Sanctions/PEP name matcher: Jaro-Winkler token best-pairs with phonetic blocking.

Scoring follows moov-io/watchman's approach, with a few deliberate changes:

* Names are normalised (see `compliance.names`) and split into tokens.
* Token similarity is Jaro-Winkler, multiplied by a penalty when the token lengths differ a
  lot (Jaro-Winkler is lenient about a short token being a prefix of a long one) and when the
  first letters differ (Jaro-Winkler is lenient there too; a smaller penalty applies when the
  two onsets are transliteration variants such as C/K, V/W, O/U).
* Best pairs: all (query token, list token) pairs are ranked by similarity and taken greedily,
  each token used at most once, so token order never matters and one list token cannot
  satisfy two query tokens ("KIM KIM").
* The name score is the length-weighted average of the paired similarities (long tokens say
  more about identity than "al" or "kim"), times soft penalties for tokens left without a
  partner on either side. Watchman counts a leftover query token as a zero-score pair; we
  penalise it softly instead, because payment messages often carry a middle name the list
  does not ("John Michael SMITH" vs "SMITH, John"), while conflicting tokens still pull the
  average down because they do get paired ("VLADIMIR PUTIN" vs "VLADIMIR BILIY").
* Names whose parts are split or joined differently are compared as concatenated spellings
  too (Indel similarity over every word order of the query, slightly discounted, counted only
  when close): "ALQAEDA" vs "AL QAEDA", "BASHIRUDDIN" vs "BASHIR-UD-DIN". A spelling counts
  only when it starts with the listed spelling's sound, judged without the query tokens
  that share no letter with it: an unrelated token never makes a spelling count.
* Every name of an entity (primary and aliases) is scored; the best one wins.
* Optional adjustments when the caller knows more: country match/mismatch, party type
  mismatch (individual vs organisation), birth year match/mismatch. A country mismatch never
  takes a name match below the review threshold: the sender writes the country.
* `Matcher.screening` adds flags on the input itself (a word mixing scripts, a country that
  contradicts the IBAN's), each a reason for review even without a hit.

Speed: a query never scores the whole list.

1. Candidates (`compliance.name_index`): each query token is compared in bulk (rapidfuzz's C
   Jaro-Winkler) with the vocabulary tokens of its onset class and of the lengths that can
   still reach the candidate floor; names holding a token that does are the candidates.
   A name's score never exceeds its best token-pair score (a weighted average of pair
   scores, times penalties <= 1), so no name that could reach the reporting threshold is
   missed. Tokens of other onset classes score at most the different-letter penalty times
   their Jaro similarity ("HAMMOUD" for "MAHMOUD": 0.857), so they are compared too, at the
   floor divided by that penalty, in the first letters and lengths where Jaro can reach it.
   Short tokens ("al", "bin") hold huge postings: when the long tokens alone can decide,
   they are looked up at a relaxed floor instead (see `_relaxed_floor`). Concatenated
   spellings are found through one bulk Indel pass over letter-sorted spellings (an upper
   bound for every word order), in every onset class a spelling can be accepted under.
2. Bounds: for each candidate, the best similarity of each query token to any of its tokens
   (raw Jaro-Winkler in bulk first, then the exact penalised value) bounds the name score
   (`_reachable`); most candidates stop there. Only the rest go through best pairs.
3. Explanations: the winning name of each hit is re-scored by `score_tokens`, the reference
   scorer, which gives the same score and says which tokens matched.

The index is exact with respect to the reference scorer: every bound above is an upper bound
of the score, with no assumption about the names. tests/unit/test_matcher.py checks it
against a brute-force matcher.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import permutations
from typing import Literal

from rapidfuzz import process
from rapidfuzz.distance import Indel, JaroWinkler

from compliance.iban_country import country_agrees_with_iban, iban_country
from compliance.lists import EntityType, ListEntity, WatchList, country_code
from compliance.name_index import IndexedName, NameIndex, onset_mask
from compliance.names import is_individual, mixed_script_words, name_tokens

Decision = Literal["block", "review", "clear"]
_JW_PREFIX_LEN = 4  # rapidfuzz's Jaro-Winkler looks at a common prefix of at most 4
_SHORT_TOKEN = 3  # tokens this short ("al", "bin", "kim") are too common to look up cheaply
_MAX_RELAXED_TOKENS = 8  # the relaxed-floor bound enumerates 2**n splits
_LOOKUP_CACHE = 4096  # token lookups kept across queries
_RELAXED_WORTH = 100  # names to score that outweigh a second lookup of the long tokens


JOINED_SPELLING_FLOOR = 0.8
COUNTRY_MISMATCH = "country mismatch:"


@dataclass(frozen=True)
class MatcherSettings:
    """Thresholds and weights of the matcher. Defaults calibrated against OFAC's own search
    scores (see bench/screening_calibration.py)."""

    review_threshold: float = 0.86
    """A hit at or above this score is a potential match: the screening goes to review.
    Chosen on the labelled set of bench/screening_labelled.py: recall 0.99 of misspelt,
    transliterated, reordered, shortened listed names at 1.5% false positives on common
    names that are not listed (0.84 gave 0.995 at 2.9%)."""
    block_threshold: float = 0.98
    """A hit at or above this score is treated as a confirmed match (block funds)."""
    min_score: float = 0.86
    """Hits below this are not returned (defaults to the review threshold)."""
    prefix_weight: float = 0.1
    length_cutoff: float = 0.9
    """Token length ratios below this are penalised..."""
    length_penalty_weight: float = 0.3
    """...by `1 - weight * (1 - ratio)`."""
    different_letter_penalty: float = 0.9
    """Factor for tokens whose first letters differ and are not transliteration variants."""
    variant_letter_penalty: float = 0.96
    """Factor for tokens whose first letters differ but share an onset class (C/K, V/W)."""
    conflict_cutoff: float = 0.82
    """Paired tokens scoring below this are conflicting evidence ("PUTIN" vs "TURIN")..."""
    conflict_weight: float = 2.0
    """...and count this many times their length in the weighted average."""
    unmatched_query_weight: float = 0.25
    """Score factor `1 - weight * share` for the query's unpaired share (by length)."""
    unmatched_list_weight: float = 0.15
    """Score factor `1 - weight * share` for the list name's unpaired share (by length)."""
    single_pair_factor: float = 0.9
    """Factor when a multi-token query pairs with a one-token list name ("Daniel X" vs the
    vessel "DANIEL"): a single shared token is weak evidence."""
    joined_spelling_factor: float = 0.95
    country_match_bonus: float = 0.02
    country_mismatch_penalty: float = 0.05
    type_mismatch_penalty: float = 0.10
    birth_year_tolerance: int = 1
    birth_year_match_bonus: float = 0.02
    birth_year_mismatch_penalty: float = 0.10

    def __post_init__(self) -> None:
        for name in ("review_threshold", "block_threshold", "min_score"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if self.review_threshold > self.block_threshold:
            raise ValueError("review_threshold must not exceed block_threshold")

    @classmethod
    def with_thresholds(cls, review: float, block: float) -> MatcherSettings:
        """The calibrated weights with the given review and block thresholds (hits below the
        review threshold are not returned)."""
        return cls(review_threshold=review, block_threshold=block, min_score=review)

    def decide(self, score: float) -> Decision:
        """Map a score to block / review / clear."""
        if score >= self.block_threshold:
            return "block"
        if score >= self.review_threshold:
            return "review"
        return "clear"


@dataclass(frozen=True)
class TokenMatch:
    """A query token paired with a list token, and their similarity."""

    query_token: str
    list_token: str
    score: float


@dataclass(frozen=True)
class NameScore:
    """How a query name compares to one list name, before entity-level adjustments."""

    score: float
    query_tokens: tuple[str, ...]
    list_tokens: tuple[str, ...]
    token_matches: tuple[TokenMatch, ...] = ()
    unmatched_query_tokens: tuple[str, ...] = ()
    unmatched_list_tokens: tuple[str, ...] = ()
    joined_spelling: bool = False
    """True when the concatenated spellings scored better than the token pairs."""


@dataclass(frozen=True)
class Adjustment:
    """A score change from facts beyond the name (country, party type, birth year)."""

    reason: str
    delta: float


@dataclass(frozen=True)
class Explanation:
    """Why a hit scored what it did."""

    name_score: float
    token_matches: tuple[TokenMatch, ...]
    unmatched_query_tokens: tuple[str, ...]
    unmatched_list_tokens: tuple[str, ...]
    joined_spelling: bool
    adjustments: tuple[Adjustment, ...]

    def __str__(self) -> str:
        parts = [f"{m.query_token}~{m.list_token}={m.score:.2f}" for m in self.token_matches]
        if self.joined_spelling:
            parts.append("(concatenated spelling)")
        if self.unmatched_query_tokens:
            parts.append(f"query only: {' '.join(self.unmatched_query_tokens)}")
        if self.unmatched_list_tokens:
            parts.append(f"list only: {' '.join(self.unmatched_list_tokens)}")
        parts.extend(f"{a.reason} {a.delta:+.2f}" for a in self.adjustments)
        return f"name {self.name_score:.3f}: " + "; ".join(parts)


@dataclass(frozen=True)
class Hit:
    """A potential match of the screened name against a listed entity."""

    list_name: str
    list_version: str
    entity_id: str
    matched_name: str
    entity_type: EntityType
    programs: tuple[str, ...]
    score: float
    decision: Decision
    explanation: Explanation


FlagKind = Literal["mixed_script", "country_mismatch"]


@dataclass(frozen=True)
class Flag:
    """A reason for review found in the screened input itself rather than in a list."""

    kind: FlagKind
    detail: str
    """What was seen: the mixed-script word, the two countries."""


@dataclass(frozen=True)
class Screening:
    """The outcome of screening one party: the hits and the flags on its input."""

    hits: tuple[Hit, ...]
    flags: tuple[Flag, ...] = ()

    @property
    def decision(self) -> Decision:
        """The most severe decision among the hits; a flag turns a clear into a review."""
        decision = decision_for(self.hits)
        return "review" if decision == "clear" and self.flags else decision


def _length_factor(a_len: int, b_len: int, settings: MatcherSettings) -> float:
    """Penalty factor for tokens of very different lengths (1.0 when close enough)."""
    ratio = min(a_len, b_len) / max(a_len, b_len)
    if ratio < settings.length_cutoff:
        return 1.0 - settings.length_penalty_weight * (1.0 - ratio)
    return 1.0


@lru_cache(maxsize=4096)
def _length_factors(length: int, longest: int, settings: MatcherSettings) -> tuple[float, ...]:
    """`_length_factor(length, n)` for n = 0..longest (index 0 unused)."""
    return (1.0, *(_length_factor(length, n, settings) for n in range(1, longest + 1)))


def token_similarity(a: str, b: str, settings: MatcherSettings) -> float:
    """Jaro-Winkler similarity of two normalised tokens, with length and first-letter
    penalties (0..1)."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    # the same products in the same order as `_Query.row`, so both give identical floats
    score = JaroWinkler.similarity(a, b, prefix_weight=settings.prefix_weight)
    score *= _length_factor(len(a), len(b), settings)
    if a[0] != b[0]:
        score *= (
            settings.variant_letter_penalty
            if onset_mask(a) & onset_mask(b)
            else settings.different_letter_penalty
        )
    return score


def _max_token_score(short: int, long: int, settings: MatcherSettings) -> float:
    """Upper bound of `token_similarity` for tokens of lengths `short` <= `long` (the short
    one a prefix of the long one)."""
    ratio = short / long
    jaro = (1.0 + ratio + 1.0) / 3.0
    prefix = min(short, _JW_PREFIX_LEN)
    score = jaro + prefix * settings.prefix_weight * (1.0 - jaro) if jaro > 0.7 else jaro
    if ratio < settings.length_cutoff:
        score *= 1.0 - settings.length_penalty_weight * (1.0 - ratio)
    return score


def _pair_tokens(
    query: Sequence[str],
    listed: Sequence[str],
    sims: Sequence[Sequence[float]],
    settings: MatcherSettings,
) -> tuple[float, list[tuple[int, int, float]]]:
    """Best pairs: the name score and the chosen (query index, list index, similarity) pairs.

    `sims[j][i]` is the similarity of query token i and list token j. Pairs are taken greedily
    by similarity, each token at most once; ties break on the tokens, not their positions, so
    word order never matters.

    Tokens left with similarity 0 to everything left on the other side (no letter in common)
    resemble nothing: each may be read as half of a conflicting pair or as a leftover, and
    with any partner, and no reading is more right than another. Greedy pairing would pick
    one by spelling, and an extra token of other letters could then take a conflict off a
    longer token ("B" instead of "ELA" against the "C" of "FRONTERA ... S EN C") and lift
    the score. So the least favourable reading to a match counts (see `_zero_pairs`).
    """
    pairs = sorted(
        (-row[i], query[i], listed[j], i, j)
        for j, row in enumerate(sims)
        for i in range(len(query))
    )
    used_q: set[int] = set()
    used_l: set[int] = set()
    chosen: list[tuple[int, int, float]] = []
    weighted = weight = 0.0
    paired_q = paired_l = 0
    target = min(len(query), len(listed))
    for neg_score, q, t, i, j in pairs:
        if len(chosen) == target or neg_score == 0.0:
            break  # the rest resemble nothing across: `_zero_pairs` reads them
        if i in used_q or j in used_l:
            continue
        used_q.add(i)
        used_l.add(j)
        score = -neg_score
        chosen.append((i, j, score))
        pair_weight = float(len(q) + len(t))
        if score < settings.conflict_cutoff:
            # a clearly different token is evidence against, not just missing evidence for
            pair_weight *= settings.conflict_weight
        weighted += score * pair_weight
        weight += pair_weight
        paired_q += len(q)
        paired_l += len(t)
    if len(chosen) < target:  # tokens left on both sides, resembling nothing across
        score, zeros = _zero_pairs(
            query,
            listed,
            [i for i in range(len(query)) if i not in used_q],
            [j for j in range(len(listed)) if j not in used_l],
            (weighted, weight, paired_q, paired_l),
            settings,
        )
        chosen.extend(zeros)
        return score, chosen
    q_len = sum(map(len, query))
    l_len = sum(map(len, listed))
    score = weighted / weight
    score *= 1.0 - settings.unmatched_query_weight * (q_len - paired_q) / q_len
    score *= 1.0 - settings.unmatched_list_weight * (l_len - paired_l) / l_len
    if len(listed) == 1 and len(query) > 1:
        score *= settings.single_pair_factor
    return score, chosen


def _zero_pairs(
    query: Sequence[str],
    listed: Sequence[str],
    rest_q: list[int],
    rest_l: list[int],
    paired: tuple[float, float, int, int],
    settings: MatcherSettings,
) -> tuple[float, list[tuple[int, int, float]]]:
    """The lowest name score over the readings of the tokens left unpaired (`rest_q`,
    `rest_l`, which resemble nothing across), and its zero-similarity pairs.

    `paired` is (weighted sum, weight, query letters, list letters) of the pairs taken. A
    reading pairs k of the leftovers on each side; the score depends only on k and the total
    length of the tokens paired on each side, and for fixed k and one side's total it is a
    ratio of two linear functions of the other side's total, so monotone in it: its least
    value is at the k longest or the k shortest tokens of each side. Four readings per k.
    """
    weighted, weight, paired_q, paired_l = paired
    q_len = sum(map(len, query))
    l_len = sum(map(len, listed))
    factor = settings.single_pair_factor if len(listed) == 1 and len(query) > 1 else 1.0
    # a zero pair is a clearly different token: it counts as conflicting evidence
    zero_weight = settings.conflict_weight if settings.conflict_cutoff > 0.0 else 1.0

    def score(extra_q: int, extra_l: int) -> float:
        total = weight + zero_weight * (extra_q + extra_l)
        if total <= 0.0:
            return 0.0  # nothing paired: nothing matches
        result = weighted / total
        result *= 1.0 - settings.unmatched_query_weight * (q_len - paired_q - extra_q) / q_len
        result *= 1.0 - settings.unmatched_list_weight * (l_len - paired_l - extra_l) / l_len
        return result * factor

    longest_q = sorted(rest_q, key=lambda i: (-len(query[i]), query[i], i))
    longest_l = sorted(rest_l, key=lambda j: (-len(listed[j]), listed[j], j))
    best: tuple[float, list[tuple[int, int, float]]] | None = None
    # most pairs first: on a tie the reading that pairs the most tokens is the one explained
    for k in range(min(len(rest_q), len(rest_l)), -1, -1):
        for side_q in (longest_q[:k], longest_q[len(longest_q) - k :]):
            for side_l in (longest_l[:k], longest_l[len(longest_l) - k :]):
                value = score(
                    sum(len(query[i]) for i in side_q), sum(len(listed[j]) for j in side_l)
                )
                if best is None or value < best[0]:
                    best = (value, [(i, j, 0.0) for i, j in zip(side_q, side_l, strict=True)])
    assert best is not None  # k = 0 always gives a reading
    return best


_Order = tuple[str, tuple[str, ...]]
"""A concatenated spelling of the query and the tokens it joins, in that order."""


def _query_orders(query: Sequence[str]) -> tuple[_Order, ...]:
    """The concatenated spellings of the query that the joined-spelling score tries: every
    word order (names have few tokens; beyond four, the sorted order only)."""
    orders = permutations(query) if len(query) <= 4 else [tuple(sorted(query))]
    return tuple(("".join(order), order) for order in dict.fromkeys(orders))


def _start(spelling: str, parts: Sequence[str], apart: frozenset[str]) -> str:
    """Where a spelling starts for the onset check: its first letters once the tokens that
    share no letter with the listed spelling (`apart`) are left out."""
    if apart:
        spelling = "".join(part for part in parts if part not in apart)
    return spelling[:3]  # an onset is read from at most three letters ("sch")


def _joined_onsets(orders: Sequence[_Order]) -> int:
    """Every onset class `_joined_score` can accept a spelling of `orders` under, whichever
    tokens a listed spelling shares no letter with (for the candidate index)."""
    mask = 0
    for _, parts in orders:
        mask |= _onsets_after("", parts)
    return mask


def _onsets_after(prefix: str, parts: Sequence[str]) -> int:
    """Onset masks of `prefix` followed by any subsequence of `parts`, read as far as the
    three letters an onset needs."""
    mask = 0
    for i, part in enumerate(parts):
        start = prefix + part
        mask |= onset_mask(start[:3])
        if len(start) < 3:  # "d" + "zh..." reads as "dzh": the next kept token counts too
            mask |= _onsets_after(start, parts[i + 1 :])
    return mask


def _joined_score(
    query: Sequence[str], orders: Sequence[_Order], listed_joined: str, settings: MatcherSettings
) -> float:
    """The concatenated-spelling score ("ALQAEDA" vs "AL QAEDA"), 0.0 unless close.

    Only word orders that start with the same sound as the listed spelling count: a spacing
    difference keeps the start ("ALI MOHAMMED" is no spacing variant of "WALI MOHAMMED").
    The start is judged on the tokens that share a letter with the listed spelling: a token
    made only of letters the listed spelling lacks adds nothing to the match, so it must not
    be what lets a spelling in - "F" in front of "ELINVESTMENT" makes "FELINVESTMENT" sound
    like "VELINVESTMENT", and an unrelated extra token would lift the score above the
    query's without it. Left out of the onset, such a token still counts in the length, so
    it only ever lowers the similarity."""
    letters = set(listed_joined)
    apart = frozenset(t for t in query if letters.isdisjoint(t))
    onset = onset_mask(listed_joined)
    best = max(
        (
            Indel.normalized_similarity(spelling, listed_joined)
            for spelling, parts in orders
            if onset_mask(_start(spelling, parts, apart)) & onset
        ),
        default=0.0,
    )
    joined = best * settings.joined_spelling_factor
    return joined if joined >= JOINED_SPELLING_FLOOR else 0.0


def score_tokens(
    query: Sequence[str],
    listed: Sequence[str],
    settings: MatcherSettings,
    similarity: Callable[[str, str], float] | None = None,
) -> NameScore:
    """Score normalised query tokens against normalised list tokens (best pairs).

    This is the reference scorer (and the one that explains a hit); `Matcher` computes the
    same score faster, with cached similarities and bounds that skip hopeless names.
    """
    query, listed = tuple(query), tuple(listed)
    if not query or not listed:
        return NameScore(0.0, query, listed)
    sim = similarity or (lambda a, b: token_similarity(a, b, settings))
    sims = [[sim(q, t) for q in query] for t in listed]
    score, chosen = _pair_tokens(query, listed, sims, settings)
    used_q = {i for i, _, _ in chosen}
    used_l = {j for _, j, _ in chosen}
    if score < 1.0:
        # "ALQAEDA" vs "AL QAEDA", "BASHIRUDDIN" vs "BASHIR-UD-DIN", "AB DULLAH" vs "ABDUL LAH"
        joined = _joined_score(query, _query_orders(query), "".join(listed), settings)
        if joined > score:
            whole = TokenMatch(" ".join(query), " ".join(listed), round(joined, 4))
            return NameScore(joined, query, listed, (whole,), joined_spelling=True)
    return NameScore(
        score,
        query,
        listed,
        tuple(TokenMatch(query[i], listed[j], round(s, 4)) for i, j, s in sorted(chosen)),
        tuple(q for i, q in enumerate(query) if i not in used_q),
        tuple(t for j, t in enumerate(listed) if j not in used_l),
    )


def score_names(
    query: str,
    listed: str,
    settings: MatcherSettings | None = None,
    *,
    query_type: str | None = None,
    listed_type: str | None = None,
) -> NameScore:
    """Score two raw names, e.g. "Vladimir Putin" against "PUTIN, Vladimir".

    `listed_type` None guesses: a name with a comma is taken to be an OFAC individual.
    """
    settings = settings or MatcherSettings()
    listed_individual = is_individual(listed_type)
    if listed_individual is None:
        listed_individual = "," in listed
    return score_tokens(
        name_tokens(query, individual=is_individual(query_type)),
        name_tokens(listed, individual=listed_individual),
        settings,
    )


class _Query:
    """One screening query: its tokens and a cache of their similarities to list tokens.

    `row(token_id)` holds the similarity of a vocabulary token to every query token; names
    share tokens ("al", "muhammad") heavily, so each row is computed once per query.
    """

    def __init__(self, tokens: tuple[str, ...], index: NameIndex, settings: MatcherSettings):
        self.tokens = tokens
        self.lengths = tuple(map(len, tokens))
        self.total_length = sum(self.lengths)
        sums = [0]
        for length in sorted(self.lengths):
            sums.append(sums[-1] + length)
        self.shortest_sums = tuple(sums)
        self.orders = _query_orders(tokens)
        self._index = index
        self._settings = settings
        longest = max(index.longest_token, *self.lengths)
        self._length_factors = [_length_factors(lq, longest, settings) for lq in self.lengths]
        self._firsts = [t[0] for t in tokens]
        self._masks = [onset_mask(t) for t in tokens]
        self.rows: dict[int, tuple[float, ...]] = {}

    def similarity(self, position: int, token_id: int) -> float:
        """Similarity of the query token at `position` to vocabulary token `token_id`."""
        found = self.rows.get(token_id)
        if found is not None:
            return found[position]
        s = self._settings
        index = self._index
        token = index.vocabulary[token_id]
        q = self.tokens[position]
        if q == token:
            return 1.0
        first = token[0]
        return (
            JaroWinkler.similarity(q, token, prefix_weight=s.prefix_weight)
            * self._length_factors[position][index.token_lengths[token_id]]
            * (
                1.0
                if self._firsts[position] == first
                else s.variant_letter_penalty
                if self._masks[position] & index.token_onsets[token_id]
                else s.different_letter_penalty
            )
        )

    def upper_rows(self, token_ids: Sequence[int]) -> dict[int, tuple[float, ...]]:
        """Raw Jaro-Winkler of each of `token_ids` to every query token: an upper bound of the
        similarity (penalties only lower it), computed in bulk in C."""
        strings = [self._index.vocabulary[t] for t in token_ids]
        columns: list[list[float]] = []
        for q in self.tokens:
            column = [0.0] * len(strings)
            for _, score, position in process.extract(
                q,
                strings,
                scorer=JaroWinkler.similarity,
                scorer_kwargs={"prefix_weight": self._settings.prefix_weight},
                limit=None,
            ):
                column[position] = score
            columns.append(column)
        return dict(zip(token_ids, zip(*columns, strict=True), strict=True))

    def row(self, token_id: int) -> tuple[float, ...]:
        """Similarities of vocabulary token `token_id` to each query token."""
        found = self.rows.get(token_id)
        if found is not None:
            return found
        s = self._settings
        index = self._index
        token = index.vocabulary[token_id]
        length = index.token_lengths[token_id]
        mask = index.token_onsets[token_id]
        first = token[0]
        jw = JaroWinkler.similarity
        found = self.rows[token_id] = tuple(
            1.0
            if q == token
            else jw(q, token, prefix_weight=s.prefix_weight)
            * factors[length]
            * (
                1.0
                if q_first == first
                else s.variant_letter_penalty
                if q_mask & mask
                else s.different_letter_penalty
            )
            for q, factors, q_first, q_mask in zip(
                self.tokens, self._length_factors, self._firsts, self._masks, strict=True
            )
        )
        return found


@dataclass(frozen=True)
class SearchStats:
    """How much work one query took: names proposed by the index, and names fully scored
    (the others were ruled out by a score bound)."""

    candidates: int
    scored: int
    indexed: int


class Matcher:
    """Screens names against one or more watch lists."""

    def __init__(self, lists: Sequence[WatchList], settings: MatcherSettings | None = None) -> None:
        """Index every name (primary and aliases) of every entity of `lists`."""
        self.lists: tuple[WatchList, ...] = tuple(lists)
        self.settings = settings or MatcherSettings()
        self._index = NameIndex(self.lists)
        self._relaxed_floors: dict[tuple[tuple[int, ...], tuple[int, ...]], float] = {}
        self._lookups: OrderedDict[tuple[str, float], frozenset[int]] = OrderedDict()

    @property
    def name_count(self) -> int:
        """How many distinct (entity, normalised name) pairs are indexed."""
        return len(self._index.names)

    @property
    def candidate_floor(self) -> float:
        """Lowest name score worth computing: the reporting threshold less the largest
        possible bonus from adjustments."""
        bonus = self.settings.country_match_bonus + self.settings.birth_year_match_bonus
        return max(0.0, self.settings.min_score - bonus)

    def _lengths(self, length: int, floor: float) -> range:
        low = length
        while low > 1 and _max_token_score(low - 1, length, self.settings) >= floor:
            low -= 1
        high = length
        longest = self._index.longest_token
        while high < longest and _max_token_score(length, high + 1, self.settings) >= floor:
            high += 1
        return range(low, high + 1)

    def _cross_floor(self, floor: float) -> float:
        """The raw Jaro-Winkler a token of another onset class needs to reach `floor`: its
        first letter differs, and `token_similarity` multiplies by the different-letter
        penalty (and a length factor <= 1); above 1.0 when none can."""
        penalty = self.settings.different_letter_penalty
        if floor <= 0.0:
            return 0.0
        return floor / penalty if penalty > 0.0 else 2.0

    def _lookup(self, query: _Query, position: int, floor: float) -> frozenset[int]:
        """Names holding a vocabulary token that scores at least `floor` against the query
        token at `position`."""
        token = query.tokens[position]
        key = (token, floor)
        found = self._lookups.get(key)
        if found is not None:
            self._lookups.move_to_end(key)
            return found
        similar = self._index.similar_tokens(
            token,
            floor,
            self._lengths(len(token), floor),
            lambda _, token_id: query.similarity(position, token_id),
            self.settings.prefix_weight,
            self._cross_floor(floor),
        )
        found = frozenset(self._index.names_with(token_id for token_id, _ in similar))
        # payment names repeat their parts ("mohammed", "smith"): the lookup of a token at a
        # floor only depends on the two, so the last few thousand are kept
        self._lookups[key] = found
        if len(self._lookups) > _LOOKUP_CACHE:
            self._lookups.popitem(last=False)
        return found

    def clear_caches(self) -> None:
        """Forget cached token lookups (to measure cold queries)."""
        self._lookups.clear()

    def _relaxed_floor(self, frequent: list[int], rare: list[int]) -> float:
        """The token floor for the rare query tokens (lengths `rare`) that still finds every
        name able to reach the candidate floor when the frequent tokens (lengths `frequent`:
        "al", "bin", "muhammad") are not looked up at all; -1.0 when there is none.

        A name found through frequent tokens alone pairs every rare query token below the
        relaxed floor r, or leaves it unpaired. For a split P of the query tokens into paired
        and unpaired, the score can reach the floor f only if (Dinkelbach, v = f / leftover
        factor of P) sum over pairs of (score - v) * weight >= 0; frequent tokens get their
        best imaginable pair (a perfect partner of the most favourable length), rare ones
        r * (length + 1) at best. Solving for r gives the least r at which P is possible;
        the relaxed floor is the least over all splits.
        """
        key = (tuple(sorted(frequent)), tuple(sorted(rare)))
        cached = self._relaxed_floors.get(key)
        if cached is None:
            cached = self._relaxed_floors[key] = self._compute_relaxed_floor(*key)
        return cached

    def _compute_relaxed_floor(self, frequent: tuple[int, ...], rare: tuple[int, ...]) -> float:
        s = self.settings
        floor = self.candidate_floor
        lengths = list(frequent) + list(rare)
        total = sum(lengths)
        longest = max(self._index.longest_token, *lengths)
        # a frequent token's best imaginable pairs: (score, weight) per partner length
        options = [
            [(_max_token_score(min(t, n), max(t, n), s), t + n) for n in range(1, longest + 1)]
            for t in frequent
        ]
        least = floor
        for mask in range(1, 1 << len(lengths)):
            paired = [k for k in range(len(lengths)) if mask >> k & 1]
            leftover = total - sum(lengths[k] for k in paired)
            factor = 1.0 - s.unmatched_query_weight * leftover / total
            if len(paired) == 1 and len(lengths) > 1:
                factor *= s.single_pair_factor  # one pair only with a one-token list name
            if factor <= 0.0:
                continue
            v = floor / factor
            if v > 1.0:
                continue
            gain = sum(
                max((score - v) * weight for score, weight in options[k])
                for k in paired
                if k < len(frequent)
            )
            rare_weight = sum(lengths[k] + 1 for k in paired if k >= len(frequent))
            if rare_weight == 0:
                if gain >= 0.0:
                    return -1.0  # frequent tokens alone can reach the floor
                continue
            # gain + (r - v) * rare_weight >= 0  <=>  r >= v - gain / rare_weight
            least = min(least, v - gain / rare_weight)
        return max(least, 0.0) if least > 0.0 else -1.0

    def _candidates(self, query: _Query) -> tuple[set[int], set[int]]:
        """(names to score by tokens, names whose concatenated spelling is close enough)."""
        floor = self.candidate_floor
        first = {t: i for i, t in reversed(list(enumerate(query.tokens)))}
        short = [i for i in first.values() if query.lengths[i] <= _SHORT_TOKEN]
        long = [i for i in first.values() if query.lengths[i] > _SHORT_TOKEN]
        found = set().union(*(self._lookup(query, i, floor) for i in long))
        relaxed_floor = -1.0
        if short and long and len(query.tokens) <= _MAX_RELAXED_TOKENS:
            relaxed_floor = self._relaxed_floor(
                [
                    n
                    for n, t in zip(query.lengths, query.tokens, strict=True)
                    if len(t) <= _SHORT_TOKEN
                ],
                [
                    n
                    for n, t in zip(query.lengths, query.tokens, strict=True)
                    if len(t) > _SHORT_TOKEN
                ],
            )
        if relaxed_floor < floor:
            # the short tokens' postings are huge: look them up only when unavoidable
            with_short = found.union(*(self._lookup(query, i, floor) for i in short))
            # the relaxed lookups find a superset of `found`, so they can spare at most the
            # names the short tokens added: below a few dozen, scoring those costs less than
            # looking the long tokens up again at a lower floor
            if relaxed_floor > 0.0 and len(with_short) - len(found) > _RELAXED_WORTH:
                relaxed = set().union(*(self._lookup(query, i, relaxed_floor) for i in long))
                # both sets hold every name that can reach the floor; score the smaller
                with_short = min(relaxed, with_short, key=len)
            found = with_short
        cutoff = max(floor, JOINED_SPELLING_FLOOR) / self.settings.joined_spelling_factor
        joined: set[int] = set()
        if cutoff <= 1.0:
            joined = self._index.similar_joined(query.tokens, cutoff, _joined_onsets(query.orders))
        return found, joined

    def _reachable(
        self, query: _Query, name: IndexedName, rows: list[tuple[float, ...]], floor: float
    ) -> bool:
        """False when the token score of `name` certainly stays below `floor`.

        With u_i the best similarity of query token i to any token of the name, the weighted
        average can reach v only if sum((s_p - v) * w_p) >= 0 over the pairs; each pair's term
        is bounded on its own (partner length and conflict weight chosen to favour it), and the
        leftover factors are bounded by the shortest tokens that must stay unpaired.
        """
        s = self.settings
        n, m = len(query.tokens), len(name.token_ids)
        if m >= n:
            factor = 1.0 - s.unmatched_list_weight * name.shortest_sums[m - n] / name.total_length
        else:
            factor = (
                1.0 - s.unmatched_query_weight * query.shortest_sums[n - m] / query.total_length
            )
        if m == 1 and n > 1:
            factor *= s.single_pair_factor
        if factor <= 0.0:
            return floor <= 0.0
        v = floor / factor
        if v > 1.0:
            return False
        cutoff, conflict = s.conflict_cutoff, s.conflict_weight
        terms: list[float] = []
        for u, lq in zip(map(max, zip(*rows, strict=True)), query.lengths, strict=True):
            if u >= v:
                gain = (u - v) * (conflict if u < cutoff else 1.0)
                if v < cutoff:  # a pair just under the conflict cut-off weighs double
                    gain = max(gain, (min(u, cutoff) - v) * conflict)
                terms.append(gain * (lq + name.max_length))
            else:
                terms.append((u - v) * (lq + name.min_length) * (conflict if u < cutoff else 1.0))
        if m < n:
            terms = sorted(terms, reverse=True)[:m]
        return sum(terms) >= 0.0

    def _scores(self, tokens: tuple[str, ...]) -> tuple[dict[int, float], SearchStats]:
        """Name score of every indexed name that reaches the candidate floor."""
        query = _Query(tokens, self._index, self.settings)
        by_tokens, by_joined = self._candidates(query)
        floor = self.candidate_floor
        names = self._index.names
        scores: dict[int, float] = {}
        scored = 0
        candidates = by_tokens | by_joined
        token_ids: set[int] = set()
        for name_id in candidates:
            token_ids.update(names[name_id].token_ids)
        upper = query.upper_rows(list(token_ids))
        for name_id in candidates:
            name = names[name_id]
            joined = 0.0
            if name_id in by_joined:
                joined = _joined_score(tokens, query.orders, name.joined, self.settings)
            best = joined
            target = max(floor, joined)
            # cheap bound on raw Jaro-Winkler first, the exact similarities only if it passes
            if self._reachable(query, name, [upper[t] for t in name.token_ids], target):
                rows = [query.row(t) for t in name.token_ids]
                if self._reachable(query, name, rows, target):
                    scored += 1
                    best = max(best, _pair_tokens(tokens, name.tokens, rows, self.settings)[0])
            if best >= floor:
                scores[name_id] = best
        return scores, SearchStats(len(candidates), scored, len(names))

    def search_stats(self, name: str, *, party_type: str | None = None) -> SearchStats:
        """How much work `screen(name)` does (candidates proposed, names fully scored)."""
        tokens = name_tokens(name, individual=is_individual(party_type))
        if not tokens:
            return SearchStats(0, 0, self.name_count)
        return self._scores(tokens)[1]

    def candidate_count(self, name: str, *, party_type: str | None = None) -> int:
        """How many indexed names `screen(name)` would consider (the rest are never looked at)."""
        return self.search_stats(name, party_type=party_type).candidates

    def _adjust(
        self,
        entity: ListEntity,
        country: str | None,
        individual: bool | None,
        birth_year: int | None,
    ) -> tuple[Adjustment, ...]:
        s = self.settings
        adjustments: list[Adjustment] = []
        code = country_code(country)
        if code and entity.countries:
            if code in entity.countries:
                adjustments.append(Adjustment(f"country {code} listed", s.country_match_bonus))
            else:
                listed = ",".join(sorted(entity.countries))
                adjustments.append(
                    Adjustment(
                        f"{COUNTRY_MISMATCH} {code} not in {listed}", -s.country_mismatch_penalty
                    )
                )
        if individual is not None and individual != (entity.type is EntityType.INDIVIDUAL):
            adjustments.append(
                Adjustment(
                    f"party type {'individual' if individual else 'organisation'} vs listed "
                    f"{entity.type.value}",
                    -s.type_mismatch_penalty,
                )
            )
        if birth_year is not None and entity.birth_years:
            gap = min(abs(birth_year - y) for y in entity.birth_years)
            if gap <= s.birth_year_tolerance:
                adjustments.append(
                    Adjustment(f"birth year {birth_year} listed", s.birth_year_match_bonus)
                )
            else:
                adjustments.append(
                    Adjustment(
                        f"birth year {birth_year} is {gap} years from listed",
                        -s.birth_year_mismatch_penalty,
                    )
                )
        return tuple(adjustments)

    def _country_floor(self, name_score: float, adjustments: Sequence[Adjustment]) -> float:
        """The review threshold when the score without the country's part reaches it, else
        0.0: a country mismatch alone never takes a name match out of review."""
        others = sum(a.delta for a in adjustments if not a.reason.startswith(COUNTRY_MISMATCH))
        reached = name_score + others >= self.settings.review_threshold
        return self.settings.review_threshold if reached else 0.0

    def _cap_country_penalty(
        self, name_score: float, adjustments: tuple[Adjustment, ...]
    ) -> tuple[Adjustment, ...]:
        """Shrink a country-mismatch penalty so it cannot pull the score below the review
        threshold (see `_country_floor`).

        The country comes from the payment message, which the sender writes: were a mismatch
        able to clear a name that matches, declaring any other country would be a way round
        screening. It still lowers a block to a review, where a person looks at it.
        """
        floor = self._country_floor(name_score, adjustments)
        if not floor:
            return adjustments
        others = sum(a.delta for a in adjustments if not a.reason.startswith(COUNTRY_MISMATCH))
        room = max(0.0, name_score + others - floor)
        capped: list[Adjustment] = []
        for a in adjustments:
            if a.reason.startswith(COUNTRY_MISMATCH) and -a.delta > room:
                a = Adjustment(f"{a.reason} (capped at the review threshold)", -room)
            capped.append(a)
        return tuple(capped)

    def screening(
        self,
        name: str,
        *,
        country: str | None = None,
        iban: str | None = None,
        party_type: str | None = None,
        birth_year: int | None = None,
        limit: int = 10,
    ) -> Screening:
        """Screen `name` like `screen`, and say what about the input itself needs a look.

        Flags: a word of the name that mixes scripts (a look-alike disguise, see
        `compliance.names.mixed_script_words`), and a `country` that disagrees with the
        country of the party's `iban`. When they disagree, the declared country is no
        evidence either way and is left out of the scores.
        """
        flags = [Flag("mixed_script", word) for word in mixed_script_words(name)]
        if iban is not None and country is not None:
            agrees = country_agrees_with_iban(country, iban)
            if agrees is False:
                flags.append(
                    Flag("country_mismatch", f"country {country} vs IBAN {iban_country(iban)}")
                )
                country = None
        hits = self.screen(
            name, country=country, party_type=party_type, birth_year=birth_year, limit=limit
        )
        return Screening(tuple(hits), tuple(flags))

    def screen(
        self,
        name: str,
        *,
        country: str | None = None,
        party_type: str | None = None,
        birth_year: int | None = None,
        limit: int = 10,
    ) -> list[Hit]:
        """Return up to `limit` entities matching `name` with a score of at least `min_score`,
        best first.

        `country` (ISO alpha-2/alpha-3 or an English name), `party_type` ("individual" or an
        organisation type) and `birth_year` refine scores when the list knows them too.
        """
        individual = is_individual(party_type)
        tokens = name_tokens(name, individual=individual)
        if not tokens or limit <= 0:
            return []
        scores, _ = self._scores(tokens)
        names = self._index.names
        best: dict[tuple[int, str], tuple[float, IndexedName]] = {}
        for name_id, score in scores.items():
            indexed = names[name_id]
            key = (indexed.list_index, indexed.entity.id)
            current = best.get(key)
            if current is None or score > current[0]:
                best[key] = (score, indexed)
        hits: list[Hit] = []
        for (list_index, _), (_, indexed) in best.items():
            entity = indexed.entity
            adjustments = self._adjust(entity, country, individual, birth_year)
            # the reference scorer explains the hit (and gives the same score)
            result = score_tokens(tokens, indexed.tokens, self.settings)
            adjustments = self._cap_country_penalty(result.score, adjustments)
            score = min(1.0, max(0.0, result.score + sum(a.delta for a in adjustments)))
            if any(a.reason.startswith(COUNTRY_MISMATCH) for a in adjustments):
                score = max(score, self._country_floor(result.score, adjustments))
            if score < self.settings.min_score:
                continue
            watch_list = self.lists[list_index]
            hits.append(
                Hit(
                    list_name=watch_list.name,
                    list_version=watch_list.version,
                    entity_id=entity.id,
                    matched_name=indexed.name,
                    entity_type=entity.type,
                    programs=entity.programs,
                    score=round(score, 4),
                    decision=self.settings.decide(score),
                    explanation=Explanation(
                        name_score=round(result.score, 4),
                        token_matches=result.token_matches,
                        unmatched_query_tokens=result.unmatched_query_tokens,
                        unmatched_list_tokens=result.unmatched_list_tokens,
                        joined_spelling=result.joined_spelling,
                        adjustments=adjustments,
                    ),
                )
            )
        hits.sort(key=lambda h: (-h.score, h.list_name, h.entity_id))
        return hits[:limit]


def decision_for(hits: Sequence[Hit]) -> Decision:
    """The overall outcome of a screening: the most severe decision among its hits."""
    decisions = {h.decision for h in hits}
    if "block" in decisions:
        return "block"
    return "review" if "review" in decisions else "clear"
