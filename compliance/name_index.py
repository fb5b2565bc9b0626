"""The candidate index of the sanctions matcher: which list names a query has to be scored
against at all.

Two blocked dictionaries, both built once per process from the normalised list names:

* the token vocabulary, blocked by (onset class, token length). A query token is compared in
  bulk (rapidfuzz's C Jaro-Winkler) with the vocabulary tokens of its onset classes and of
  the lengths that can still reach the floor; the names holding a token that does are the
  candidates. Postings are kept per token, so common tokens ("muhammad") cost one set update.
  Tokens of other onset classes are scored lower by the matcher (a first-letter penalty), but
  can still reach the floor ("HAMMOUD" for "MAHMOUD"): they are compared at the floor raised
  by that penalty, through blocks by first letter and by the letters next to it, in the
  lengths where Jaro similarity can still reach it (`NameIndex._cross_blocks`).
* the concatenated spellings ("alqaeda" for "AL QAEDA"), blocked the same way and searched with
  rapidfuzz's Indel similarity, for queries that split or join name parts differently.

The index knows nothing about scoring beyond three numbers: a similarity function that never
exceeds raw Jaro-Winkler (so a C-side cut-off at the floor loses nothing), the floor, and the
raw Jaro-Winkler a token of another onset class needs to reach the floor.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import Indel, JaroWinkler

from compliance.lists import EntityType, ListEntity, WatchList
from compliance.names import first_letter_classes, name_tokens

_class_bits: dict[str, int] = {}


@lru_cache(maxsize=1 << 16)
def onset_mask(token: str) -> int:
    """`first_letter_classes(token)` as a bit mask, so that "same onset class" is one `&`."""
    mask = 0
    for onset in first_letter_classes(token):
        bit = _class_bits.get(onset)
        if bit is None:
            bit = _class_bits[onset] = 1 << len(_class_bits)
        mask |= bit
    return mask


@lru_cache(maxsize=1 << 16)
def block_mask(token: str) -> int:
    """The onset blocks a token is filed and looked up under: its onset classes plus the
    class of its bare first letter, so that tokens starting with the same letter always meet
    ("GKHANEM" is read as G+K, "GHASEMI" as the digraph GH)."""
    return onset_mask(token) | onset_mask(token[:1])


@dataclass(frozen=True, slots=True)
class IndexedName:
    """One distinct normalised name of a listed entity, with what scoring needs precomputed."""

    list_index: int
    entity: ListEntity
    name: str
    tokens: tuple[str, ...]
    token_ids: tuple[int, ...]
    total_length: int
    min_length: int
    max_length: int
    shortest_sums: tuple[int, ...]
    """`shortest_sums[k]`: total length of the k shortest tokens (bounds unpaired leftovers)."""
    joined: str


def indel_length_window(length: int, cutoff: float, longest: int) -> range:
    """Lengths `b` for which Indel similarity can reach `cutoff` against a string of `length`.

    Indel similarity is 2*LCS/(a+b) <= 2*min(a,b)/(a+b); solving for b gives the window.
    """
    if cutoff <= 0.0:
        return range(1, longest + 1)
    low = length
    while low > 1 and 2 * (low - 1) / (length + low - 1) >= cutoff:
        low -= 1
    high = length
    while high < longest and 2 * length / (length + high + 1) >= cutoff:
        high += 1
    return range(low, high + 1)


# float rounding: a C-side cut-off or a bound computed here must never drop a token whose
# similarity, computed elsewhere in another order of operations, lands exactly on the floor
# (rapidfuzz drops a Jaro-Winkler of exactly 0.6 at a cut-off of 0.6 - 1e-9)
_JARO_SLACK = 1e-6


_OWN_REACH = 3
"""A token is filed under the letters of positions 1..3 (further for long tokens, see
`_reach_letters`): the match window of Jaro similarity around position 0 spans no more while
both strings are at most 9 long."""


@lru_cache(maxsize=4096)
def jaro_length_window(
    length: int, cutoff: float, longest: int, first_matched: bool, other_first_matched: bool
) -> range:
    """Lengths `b` for which Jaro similarity of a string of `length` and a string of length `b`
    starting with a different letter can reach `cutoff` (empty when none can).

    Jaro is (m/a + m/b + (m - t)/m) / 3 with m matched letters, at most min(a, b). A first
    letter that cannot find its match (it occurs nowhere in the other string's match window
    around position 0) stays unmatched: `first_matched` False (the first string's) takes one
    off a, `other_first_matched` False (the second string's) one off b.
    """
    lengths = [
        b
        for b in range(1, longest + 1)
        if (m := min(length - (not first_matched), b - (not other_first_matched))) > 0
        and (m / length + m / b + 1.0) / 3.0 >= cutoff - _JARO_SLACK
    ]
    # the bound rises with b up to a and falls after: the qualifying lengths are contiguous
    return range(lengths[0], lengths[-1] + 1) if lengths else range(0)


def jaro_reach(length: int, other: int) -> int:
    """How far from its position a letter can find its match in rapidfuzz's Jaro similarity
    of strings of lengths `length` and `other`."""
    return max(length, other) // 2 - 1


def _reach_letters(token: str) -> set[str]:
    """The letters a first letter of another token can match in `token` (positions 1 to the
    match window's end) against any token up to `token`'s length or up to 9 long."""
    return set(token[1 : max(_OWN_REACH, jaro_reach(len(token), len(token))) + 1])


class NameIndex:
    """Every distinct normalised name of every entity of some watch lists, and the blocked
    dictionaries that find the names worth scoring for a query."""

    def __init__(self, lists: Sequence[WatchList]) -> None:
        """Normalise and index every name (primary and aliases) of every entity of `lists`."""
        self.vocabulary: list[str] = []
        self.token_ids: dict[str, int] = {}
        self.names: list[IndexedName] = []
        postings: list[list[int]] = []
        joined_blocks: dict[int, list[int]] = defaultdict(list)
        for list_index, watch_list in enumerate(lists):
            for entity in watch_list.entities:
                individual = entity.type is EntityType.INDIVIDUAL
                seen: set[tuple[str, ...]] = set()
                for entity_name in entity.names:
                    tokens = name_tokens(entity_name.name, individual=individual)
                    if not tokens or tokens in seen:
                        continue
                    seen.add(tokens)
                    name_id = len(self.names)
                    ids = tuple(self._token_id(t, postings) for t in tokens)
                    for token_id in set(ids):
                        postings[token_id].append(name_id)
                    lengths = sorted(map(len, tokens))
                    sums = [0]
                    for length in lengths:
                        sums.append(sums[-1] + length)
                    joined = "".join(tokens)
                    self.names.append(
                        IndexedName(
                            list_index=list_index,
                            entity=entity,
                            name=entity_name.name,
                            tokens=tokens,
                            token_ids=ids,
                            total_length=sums[-1],
                            min_length=lengths[0],
                            max_length=lengths[-1],
                            shortest_sums=tuple(sums),
                            joined=joined,
                        )
                    )
                    for bit in _bits(onset_mask(joined)):
                        joined_blocks[bit].append(name_id)
        self.postings: list[tuple[int, ...]] = [tuple(p) for p in postings]
        self.token_lengths: list[int] = [len(t) for t in self.vocabulary]
        self.token_onsets: list[int] = [onset_mask(t) for t in self.vocabulary]
        self.longest_token = max(self.token_lengths, default=0)
        self.longest_joined = max((len(n.joined) for n in self.names), default=0)
        token_blocks: dict[int, list[int]] = defaultdict(list)
        letters_of: dict[str, list[int]] = defaultdict(list)
        reach_of: dict[str, list[int]] = defaultdict(list)
        self._token_blocks_of = [block_mask(t) for t in self.vocabulary]
        for token_id, token in enumerate(self.vocabulary):
            for bit in _bits(self._token_blocks_of[token_id]):
                token_blocks[bit].append(token_id)
            letters_of[token[0]].append(token_id)
            for letter in _reach_letters(token):
                reach_of[letter].append(token_id)
        self._token_blocks = {
            bit: _Block.build(ids, self.vocabulary) for bit, ids in token_blocks.items()
        }
        self._all_tokens = _Block.build(range(len(self.vocabulary)), self.vocabulary)
        self._letter_blocks = {
            letter: _Block.build(ids, self.vocabulary) for letter, ids in letters_of.items()
        }
        self._reach_blocks = {
            letter: _Block.build(ids, self.vocabulary) for letter, ids in reach_of.items()
        }
        letters = ["".join(sorted(n.joined)) for n in self.names]
        self._joined_blocks = {
            bit: _Block.build(ids, letters) for bit, ids in joined_blocks.items()
        }

    def _token_id(self, token: str, postings: list[list[int]]) -> int:
        found = self.token_ids.get(token)
        if found is None:
            found = self.token_ids[token] = len(self.vocabulary)
            self.vocabulary.append(token)
            postings.append([])
        return found

    def similar_tokens(
        self,
        token: str,
        floor: float,
        lengths: range,
        similarity: Callable[[str, int], float],
        prefix_weight: float,
        cross_floor: float,
    ) -> list[tuple[int, float]]:
        """Vocabulary tokens (id, similarity) scoring at least `floor` against `token`.

        Tokens sharing an onset block with `token` (`block_mask`) are compared in bulk in
        `lengths`. The others start with another letter, so raw Jaro-Winkler is plain Jaro
        for them (no common prefix), and `cross_floor` is the least raw value at which one
        can still reach `floor`: they are compared in bulk per first letter, in the lengths
        where Jaro can reach it (`jaro_length_window`).
        `similarity(token, token_id)` must never exceed raw Jaro-Winkler with `prefix_weight`:
        the C-side pass cuts at the floor, the exact similarity is computed for survivors only.
        """
        found: list[tuple[int, float]] = []
        seen: set[int] = set()
        mask = block_mask(token)
        for bit in _bits(mask):
            block = self._token_blocks.get(bit)
            if block is None:
                continue
            offset, choices = block.window(lengths)
            for _, _, position in process.extract(
                token,
                choices,
                scorer=JaroWinkler.similarity,
                scorer_kwargs={"prefix_weight": prefix_weight},
                score_cutoff=floor - _JARO_SLACK,
                limit=None,
            ):
                token_id = block.ids[offset + position]
                if token_id in seen:  # a token can sit in two onset blocks ("ch": K and S)
                    continue
                seen.add(token_id)
                score = similarity(token, token_id)
                if score >= floor:
                    found.append((token_id, score))
        if cross_floor > 1.0:
            return found
        for block, window in self._cross_blocks(token, cross_floor):
            offset, choices = block.window(window)
            if not choices:
                continue
            for _, _, position in process.extract(
                token,
                choices,
                scorer=JaroWinkler.similarity,
                scorer_kwargs={"prefix_weight": prefix_weight},
                score_cutoff=cross_floor - _JARO_SLACK,
                limit=None,
            ):
                token_id = block.ids[offset + position]
                if token_id in seen or self._token_blocks_of[token_id] & mask:
                    continue  # found twice, or shares an onset block: compared above
                seen.add(token_id)
                score = similarity(token, token_id)
                if score >= floor:
                    found.append((token_id, score))
        return found

    def _cross_blocks(self, token: str, cutoff: float) -> list[tuple[_Block, range]]:
        """The (block, lengths) that hold every token starting with another letter than
        `token` whose Jaro similarity with it can reach `cutoff`.

        Both first letters differ, so each is either matched further in, within the match
        window around position 0, or not at all, which lowers the bound (see
        `jaro_length_window`). Three cases cover every token:
        * `token`'s first letter matched: the token holds it in its reach (`_reach_letters`);
        * only the other first letter matched: `token` holds that letter in its reach;
        * neither matched: any token, in the narrowest lengths.
        The reach blocks cover the window around position 0 only while `token` is at most 9
        long (a longer token reaches further into a shorter one); past that the first case is
        not told apart and every length where its first letter may be matched is compared.
        """
        size, longest = len(token), self.longest_token
        widest = jaro_length_window(size, cutoff, longest, True, True)
        if not widest:
            return []
        own = jaro_reach(size, size) <= _OWN_REACH
        chosen = [(self._all_tokens, jaro_length_window(size, cutoff, longest, not own, False))]
        window = jaro_length_window(size, cutoff, longest, not own, True)
        reached: dict[str, int] = {}
        for position, letter in enumerate(token[1 : jaro_reach(size, widest[-1]) + 1], 1):
            reached.setdefault(letter, position)
        for letter, position in sorted(reached.items()):
            block = self._letter_blocks.get(letter)
            if block is None or letter == token[0]:
                continue
            # a letter at `position` is within the window around position 0 only when the
            # longer of the two strings is at least 2 * (position + 1) long
            shortest = 2 * (position + 1) if jaro_reach(size, size) < position else 0
            chosen.append((block, range(max(window.start, shortest), window.stop)))
        held = self._reach_blocks.get(token[0])
        if own and held is not None:
            chosen.append((held, widest))
        return chosen

    def names_with(self, token_ids: Iterable[int]) -> set[int]:
        """Ids of the names holding any of `token_ids`."""
        found: set[int] = set()
        for token_id in token_ids:
            found.update(self.postings[token_id])
        return found

    def similar_joined(self, tokens: Sequence[str], cutoff: float, onsets: int) -> set[int]:
        """Ids of names whose concatenated spelling may have Indel similarity >= `cutoff` with
        some concatenation of `tokens` in any order (a superset: verify each), among the
        spellings filed under the onset classes of `onsets` (a mask, see `onset_mask`: every
        onset the caller accepts a concatenation under).

        The longest common subsequence of two strings is at most their common multiset of
        letters, which is the same for every word order: so one bulk Indel pass over the
        letter-sorted spellings serves all orders.
        """
        letters = "".join(sorted("".join(tokens)))
        found: set[int] = set()
        window = indel_length_window(len(letters), cutoff, self.longest_joined)
        for bit in _bits(onsets):
            block = self._joined_blocks.get(bit)
            if block is None:
                continue
            offset, choices = block.window(window)
            for _, _, position in process.extract(
                letters,
                choices,
                scorer=Indel.normalized_similarity,
                score_cutoff=cutoff,
                limit=None,
            ):
                found.add(block.ids[offset + position])
        return found


@dataclass(frozen=True, slots=True)
class _Block:
    """Strings of one onset class sorted by length, so that a length window is one slice
    (one bulk rapidfuzz call instead of one per length)."""

    strings: tuple[str, ...]
    ids: tuple[int, ...]
    starts: tuple[int, ...]
    """`starts[n]`: position of the first string of length >= n."""

    @classmethod
    def build(cls, ids: Sequence[int], strings: Sequence[str]) -> _Block:
        ordered = sorted(ids, key=lambda i: (len(strings[i]), i))
        texts = tuple(strings[i] for i in ordered)
        longest = len(texts[-1]) if texts else 0
        starts: list[int] = []
        position = 0
        for length in range(longest + 2):
            while position < len(texts) and len(texts[position]) < length:
                position += 1
            starts.append(position)
        return cls(texts, tuple(ordered), tuple(starts))

    def window(self, lengths: range) -> tuple[int, tuple[str, ...]]:
        """(offset, strings) of the given lengths."""
        last = len(self.starts) - 1
        start = self.starts[min(max(lengths.start, 0), last)]
        stop = self.starts[min(max(lengths.stop, 0), last)]
        return start, self.strings[start:stop]


def _bits(mask: int) -> list[int]:
    bits: list[int] = []
    while mask:
        low = mask & -mask
        bits.append(low)
        mask ^= low
    return bits
