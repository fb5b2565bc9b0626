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
* When the two names have different token counts, the concatenated spellings are compared
  too (indel similarity, slightly discounted): "ALQAEDA" vs "AL QAEDA", "BASHIRUDDIN" vs
  "BASHIR-UD-DIN".
* Every name of an entity (primary and aliases) is scored; the best one wins.
* Optional adjustments when the caller knows more: country match/mismatch, party type
  mismatch (individual vs organisation), birth year match/mismatch.

Candidate index: the vocabulary of list tokens (plus concatenated names) is blocked by
(first-sound class, token length). A query token is compared, in bulk, only with vocabulary
tokens of its blocks; names containing a vocabulary token that scores at least the candidate
floor are the candidates. Because a name's score never exceeds its best token-pair score
(a weighted average of pair scores, times penalties <= 1), no name that could reach the
reporting threshold is skipped - provided its best token shares an onset class with the
query token (across classes the first-letter penalty makes that very unlikely) - and the
length window is derived from the same bound.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import permutations
from typing import Literal

from rapidfuzz import process
from rapidfuzz.distance import Indel, JaroWinkler

from compliance.lists import EntityType, ListEntity, WatchList, country_code
from compliance.names import first_letter_classes, is_individual, name_tokens, same_onset_class

Decision = Literal["block", "review", "clear"]
_JW_PREFIX_LEN = 4  # rapidfuzz's Jaro-Winkler looks at a common prefix of at most 4
_SHORT_TOKEN = 3  # tokens this short ("al", "bin", "kim") are too common to look up cheaply
_MAX_RELAXED_TOKENS = 8  # the relaxed-floor bound enumerates 2**n splits


JOINED_SPELLING_FLOOR = 0.8


@dataclass(frozen=True)
class MatcherSettings:
    """Thresholds and weights of the matcher. Defaults calibrated against OFAC's own search
    scores (see bench/screening_calibration.py)."""

    review_threshold: float = 0.84
    """A hit at or above this score is a potential match: the screening goes to review."""
    block_threshold: float = 0.98
    """A hit at or above this score is treated as a confirmed match (block funds)."""
    min_score: float = 0.84
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
    conflict_cutoff: float = 0.75
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


def token_similarity(a: str, b: str, settings: MatcherSettings) -> float:
    """Jaro-Winkler similarity of two normalised tokens, with length and first-letter
    penalties (0..1)."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    score = JaroWinkler.similarity(a, b, prefix_weight=settings.prefix_weight)
    ratio = min(len(a), len(b)) / max(len(a), len(b))
    if ratio < settings.length_cutoff:
        score *= 1.0 - settings.length_penalty_weight * (1.0 - ratio)
    if a[0] != b[0]:
        score *= (
            settings.variant_letter_penalty
            if same_onset_class(a, b)
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


def score_tokens(
    query: Sequence[str],
    listed: Sequence[str],
    settings: MatcherSettings,
    similarity: Callable[[str, str], float] | None = None,
) -> NameScore:
    """Score normalised query tokens against normalised list tokens (best pairs)."""
    query, listed = tuple(query), tuple(listed)
    if not query or not listed:
        return NameScore(0.0, query, listed)
    sim = similarity or (lambda a, b: token_similarity(a, b, settings))
    pairs = sorted(
        ((sim(q, t), i, j) for i, q in enumerate(query) for j, t in enumerate(listed)),
        # ties break on the tokens, not their positions: word order must not matter
        key=lambda p: (-p[0], query[p[1]], listed[p[2]], p[1], p[2]),
    )
    used_q: set[int] = set()
    used_l: set[int] = set()
    matches: list[tuple[int, TokenMatch]] = []
    weighted = weight = 0.0
    target = min(len(query), len(listed))
    for score, i, j in pairs:
        if i in used_q or j in used_l:
            continue
        used_q.add(i)
        used_l.add(j)
        matches.append((i, TokenMatch(query[i], listed[j], round(score, 4))))
        pair_weight = float(len(query[i]) + len(listed[j]))
        if score < settings.conflict_cutoff:
            # a clearly different token is evidence against, not just missing evidence for
            pair_weight *= settings.conflict_weight
        weighted += score * pair_weight
        weight += pair_weight
        if len(used_q) == target:
            break
    left_q = tuple(q for i, q in enumerate(query) if i not in used_q)
    left_l = tuple(t for j, t in enumerate(listed) if j not in used_l)
    q_len, l_len = sum(map(len, query)), sum(map(len, listed))
    score = weighted / weight
    score *= 1.0 - settings.unmatched_query_weight * sum(map(len, left_q)) / q_len
    score *= 1.0 - settings.unmatched_list_weight * sum(map(len, left_l)) / l_len
    if len(listed) == 1 and len(query) > 1:
        score *= settings.single_pair_factor
    token_score = NameScore(
        score,
        query,
        listed,
        tuple(m for _, m in sorted(matches, key=lambda x: x[0])),
        left_q,
        left_l,
    )
    if len(query) != len(listed):
        # "ALQAEDA" vs "AL QAEDA"; the query's word order must not matter, so the best of
        # its orders counts (names have few tokens; beyond four, keep the given order), and
        # only a close joined spelling counts at all (a loose one is noise, not evidence)
        orders = permutations(query) if len(query) <= 4 else [tuple(sorted(query))]
        joined = max(
            Indel.normalized_similarity("".join(order), "".join(listed)) for order in orders
        )
        joined *= settings.joined_spelling_factor
        if joined >= JOINED_SPELLING_FLOOR and joined > score:
            whole = TokenMatch(" ".join(query), " ".join(listed), round(joined, 4))
            return NameScore(joined, query, listed, (whole,), joined_spelling=True)
    return token_score


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


@dataclass(frozen=True)
class _IndexedName:
    list_index: int
    entity: ListEntity
    name: str
    tokens: tuple[str, ...]


@dataclass
class _QueryContext:
    settings: MatcherSettings
    cache: dict[tuple[str, str], float] = field(default_factory=dict)

    def similarity(self, a: str, b: str) -> float:
        key = (a, b)
        found = self.cache.get(key)
        if found is None:
            found = self.cache[key] = token_similarity(a, b, self.settings)
        return found


class Matcher:
    """Screens names against one or more watch lists."""

    def __init__(self, lists: Sequence[WatchList], settings: MatcherSettings | None = None) -> None:
        """Index every name (primary and aliases) of every entity of `lists`."""
        self.lists: tuple[WatchList, ...] = tuple(lists)
        self.settings = settings or MatcherSettings()
        self._names: list[_IndexedName] = []
        postings: dict[str, list[int]] = defaultdict(list)
        for list_index, watch_list in enumerate(self.lists):
            for entity in watch_list.entities:
                individual = entity.type is EntityType.INDIVIDUAL
                seen: set[tuple[str, ...]] = set()
                for entity_name in entity.names:
                    tokens = name_tokens(entity_name.name, individual=individual)
                    if not tokens or tokens in seen:
                        continue
                    seen.add(tokens)
                    name_id = len(self._names)
                    self._names.append(_IndexedName(list_index, entity, entity_name.name, tokens))
                    keys = set(tokens)
                    if len(tokens) > 1:
                        keys.add("".join(tokens))
                    for key in keys:
                        postings[key].append(name_id)
        self._postings: dict[str, tuple[int, ...]] = {k: tuple(v) for k, v in postings.items()}
        blocks: dict[tuple[str, int], list[str]] = defaultdict(list)
        for token in self._postings:
            for onset in first_letter_classes(token):
                blocks[(onset, len(token))].append(token)
        self._blocks: dict[tuple[str, int], list[str]] = dict(blocks)
        self._max_token_len = max((len(t) for t in self._postings), default=0)

    @property
    def name_count(self) -> int:
        """How many distinct (entity, normalised name) pairs are indexed."""
        return len(self._names)

    @property
    def candidate_floor(self) -> float:
        """Lowest token score a name needs to be scored at all: the reporting threshold less
        the largest possible bonus from adjustments."""
        bonus = self.settings.country_match_bonus + self.settings.birth_year_match_bonus
        return max(0.0, self.settings.min_score - bonus)

    def _lengths(self, length: int, floor: float) -> range:
        low = length
        while low > 1 and _max_token_score(low - 1, length, self.settings) >= floor:
            low -= 1
        high = length
        while (
            high < self._max_token_len
            and _max_token_score(length, high + 1, self.settings) >= floor
        ):
            high += 1
        return range(low, high + 1)

    def _lookup(self, token: str, floor: float, context: _QueryContext) -> set[int]:
        """Names holding a vocabulary token that scores at least `floor` against `token`."""
        choices: list[str] = []
        for onset in first_letter_classes(token):
            for length in self._lengths(len(token), floor):
                choices.extend(self._blocks.get((onset, length), ()))
        found: set[int] = set()
        # bulk Jaro-Winkler in C first; the Python-side penalties only ever lower a score
        for choice, _, _ in process.extract(
            token,
            choices,
            scorer=JaroWinkler.similarity,
            scorer_kwargs={"prefix_weight": self.settings.prefix_weight},
            score_cutoff=floor,
            limit=None,
        ):
            if context.similarity(token, choice) >= floor:
                found.update(self._postings[choice])
        return found

    def _relaxed_floor(self, short: list[str], long: list[str], floor: float) -> float:
        """The token floor for `long` tokens that still finds every name able to reach `floor`
        when the `short` tokens ("al", "bin", "kim") are not looked up at all.

        Short tokens have huge postings. A name found through them alone pairs every long
        query token below the floor (or leaves it unpaired), so its score is bounded by the
        weighted average of perfect short pairs and sub-floor long pairs, times the leftover
        penalty; every split of the long tokens into paired and unpaired is checked.
        """
        s = self.settings
        total = sum(map(len, short)) + sum(map(len, long))
        # a short token's best imaginable pair for each partner length: (score, weight)
        options = [
            [
                (_max_token_score(min(len(t), n), max(len(t), n), s), len(t) + n)
                for n in range(1, self._max_token_len + 1)
            ]
            for t in short
        ]

        def reachable(r: float) -> bool:
            # Is `floor` reachable when every long token pairs below r or stays unpaired?
            # avg * factor >= floor  <=>  sum((score - v) * weight) >= 0 with v = floor/factor,
            # which each short token can maximise on its own (Dinkelbach).
            for mask in range(1 << len(long)):
                paired = [t for k, t in enumerate(long) if mask >> k & 1]
                leftover = total - sum(map(len, short)) - sum(map(len, paired))
                factor = 1.0 - s.unmatched_query_weight * leftover / total
                if len(short) + len(paired) == 1:
                    factor *= s.single_pair_factor
                v = floor / factor
                if v > 1.0:
                    continue
                gain = sum(max((sc - v) * w for sc, w in opts) for opts in options)
                gain += sum((r - v) * (len(t) + 1) for t in paired)
                if gain >= 0:
                    return True
            return False

        if not reachable(floor):
            return floor
        low, high = 0.0, floor
        if reachable(low):
            return -1.0
        for _ in range(16):
            mid = (low + high) / 2
            low, high = (mid, high) if not reachable(mid) else (low, mid)
        return low

    def _candidates(self, tokens: tuple[str, ...], context: _QueryContext) -> set[int]:
        floor = self.candidate_floor
        found: set[int] = set()
        if len(tokens) > 1:
            found |= self._lookup("".join(tokens), floor, context)
        short = [t for t in dict.fromkeys(tokens) if len(t) <= _SHORT_TOKEN]
        long = [t for t in dict.fromkeys(tokens) if len(t) > _SHORT_TOKEN]
        plain = set().union(*(self._lookup(t, floor, context) for t in long))
        if short and long and len(long) <= _MAX_RELAXED_TOKENS:
            relaxed_floor = self._relaxed_floor(short, long, floor)
            if relaxed_floor > 0:
                relaxed = set().union(*(self._lookup(t, relaxed_floor, context) for t in long))
                # both sets hold every name that can reach the floor; score the smaller
                with_short = plain.union(*(self._lookup(t, floor, context) for t in short))
                return found | min(relaxed, with_short, key=len)
        return found | plain.union(*(self._lookup(t, floor, context) for t in short))

    def candidate_count(self, name: str, *, party_type: str | None = None) -> int:
        """How many indexed names `screen(name)` would score (the rest are never looked at)."""
        tokens = name_tokens(name, individual=is_individual(party_type))
        return len(self._candidates(tokens, _QueryContext(self.settings))) if tokens else 0

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
                    Adjustment(f"country {code} not in {listed}", -s.country_mismatch_penalty)
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
        context = _QueryContext(self.settings)
        best: dict[tuple[int, str], tuple[NameScore, _IndexedName]] = {}
        for name_id in self._candidates(tokens, context):
            indexed = self._names[name_id]
            result = score_tokens(tokens, indexed.tokens, self.settings, context.similarity)
            key = (indexed.list_index, indexed.entity.id)
            current = best.get(key)
            if current is None or result.score > current[0].score:
                best[key] = (result, indexed)
        hits: list[Hit] = []
        for (list_index, _), (result, indexed) in best.items():
            entity = indexed.entity
            adjustments = self._adjust(entity, country, individual, birth_year)
            score = min(1.0, max(0.0, result.score + sum(a.delta for a in adjustments)))
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
