"""The candidate index of the sanctions matcher: which list names a query has to be scored
against at all.

Two blocked dictionaries, both built once per process from the normalised list names:

* the token vocabulary, blocked by (onset class, token length). A query token is compared in
  bulk (rapidfuzz's C Jaro-Winkler) only with the vocabulary tokens of its onset classes and of
  the lengths that can still reach the floor; the names holding a token that does are the
  candidates. Postings are kept per token, so common tokens ("muhammad") cost one set update.
* the concatenated spellings ("alqaeda" for "AL QAEDA"), blocked the same way and searched with
  rapidfuzz's Indel similarity, for queries that split or join name parts differently.

The index knows nothing about scoring beyond two numbers: a similarity function that never
exceeds raw Jaro-Winkler (so a C-side cut-off at the floor loses nothing) and the floor.
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
        tails: dict[str, list[int]] = defaultdict(list)
        self._token_blocks_of = [block_mask(t) for t in self.vocabulary]
        for token_id, token in enumerate(self.vocabulary):
            for bit in _bits(self._token_blocks_of[token_id]):
                token_blocks[bit].append(token_id)
            tails[token[1:]].append(token_id)
        self._tails = {tail: tuple(ids) for tail, ids in tails.items()}
        self._token_blocks = {
            bit: _Block.build(ids, self.vocabulary) for bit, ids in token_blocks.items()
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
    ) -> list[tuple[int, float]]:
        """Vocabulary tokens (id, similarity) scoring at least `floor` against `token`.

        Only tokens sharing an onset block with `token` (`block_mask`) and of one of `lengths`
        are compared in bulk, plus the few one first-letter edit away (`first_letter_edits`).
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
                score_cutoff=floor,
                limit=None,
            ):
                token_id = block.ids[offset + position]
                if token_id in seen:  # a token can sit in two onset blocks ("ch": K and S)
                    continue
                seen.add(token_id)
                score = similarity(token, token_id)
                if score >= floor:
                    found.append((token_id, score))
        for token_id in self.first_letter_edits(token):
            if token_id not in seen and not self._token_blocks_of[token_id] & mask:
                score = similarity(token, token_id)
                if score >= floor:
                    found.append((token_id, score))
        return found

    def first_letter_edits(self, token: str) -> set[int]:
        """Vocabulary tokens one edit of the first letters away from `token` (an extra,
        missing, wrong or swapped first letter: "EPATRACA", "ATRACA", "XATRACA", "APTRACA" for
        "PATRACA"). The onset blocks cannot find them, and only they (or tokens of 15 letters
        and more) can score as high across onset classes."""
        found: set[int] = set()
        exact = self.token_ids.get(token[1:])
        if exact is not None:
            found.add(exact)
        found.update(self._tails.get(token, ()))
        found.update(self._tails.get(token[1:], ()))
        if len(token) > 1:
            swapped = self.token_ids.get(token[1] + token[0] + token[2:])
            if swapped is not None:
                found.add(swapped)
        return found

    def names_with(self, token_ids: Iterable[int]) -> set[int]:
        """Ids of the names holding any of `token_ids`."""
        found: set[int] = set()
        for token_id in token_ids:
            found.update(self.postings[token_id])
        return found

    def similar_joined(self, tokens: Sequence[str], cutoff: float) -> set[int]:
        """Ids of names whose concatenated spelling may have Indel similarity >= `cutoff` with
        some concatenation of `tokens` in any order (a superset: verify each).

        The longest common subsequence of two strings is at most their common multiset of
        letters, which is the same for every word order: so one bulk Indel pass over the
        letter-sorted spellings serves all orders. A concatenation starts with one of the
        tokens, so only the onset blocks of the tokens are searched.
        """
        letters = "".join(sorted("".join(tokens)))
        found: set[int] = set()
        window = indel_length_window(len(letters), cutoff, self.longest_joined)
        mask = 0
        for token in tokens:
            mask |= onset_mask(token)
        for bit in _bits(mask):
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
