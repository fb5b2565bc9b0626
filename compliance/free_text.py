"""Listed names inside free text: remittance information, address lines.

A payment can name a listed party outside its party fields: "payment for BANCO NACIONAL DE
CUBA invoice 42". The text is split into tokens and every run of up to `max_window`
consecutive tokens (a window) is screened as a name. A window counts only when it is the
whole of a listed name, and nothing more: every window token pairs with a token of the listed
name and every token of the listed name is paired (or the two are the same concatenated
spelling). Free text holds many words that are nobody's name, so this is stricter than name
screening, and the threshold is higher: a name field says "this is a name", a word in a
sentence does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from compliance.matcher import Flag, Hit, Matcher
from compliance.names import STOPWORDS, mixed_script_words, tokenize

FREE_TEXT_THRESHOLD = 0.93
"""Window score needed: "BANCO NACIONAL DE CUBA" and spelling slips in it pass, ordinary
words that resemble a short listed name do not (tests/unit/test_free_text.py)."""
MAX_WINDOW = 6
"""Tokens per window: listed names longer than this are found through a six-token part only
if it is a listed name too (OFAC names rarely have more than six words without stopwords)."""
MIN_SINGLE_TOKEN = 5
"""Single-word windows shorter than this are not screened ("BNC", "Gaza" need a second word):
short words match too many short listed names and aliases."""


@dataclass(frozen=True)
class TextHit:
    """A listed entity named inside free text."""

    window: str
    """The words of the text that name it (folded, as screened)."""
    start: int
    """Position of the window's first token among the text's tokens."""
    hit: Hit


@dataclass(frozen=True)
class TextScreening:
    """The outcome of screening a free text: entities named in it, flags on the text."""

    hits: tuple[TextHit, ...]
    flags: tuple[Flag, ...] = ()


def _text_tokens(text: str) -> list[str]:
    return [t for t in tokenize(text) if t]


def _can_bound_a_name(token: str) -> bool:
    """A window never starts or ends with a connector ("for", "of") or a number."""
    return token not in STOPWORDS and not token.isdigit()


def _is_whole_name(hit: Hit, window_tokens: int) -> bool:
    """The window is the listed name, no more and no less.

    A one-word window must meet a listed name of one word as listed: "DES INTERNATIONAL
    CO., LTD." normalises to "international" (stopword and legal forms dropped), which a
    sentence holds by chance."""
    explanation = hit.explanation
    if window_tokens == 1 and len(_text_tokens(hit.matched_name)) > 1:
        return False
    return explanation.joined_spelling or not (
        explanation.unmatched_query_tokens or explanation.unmatched_list_tokens
    )


def screen_free_text(
    matcher: Matcher,
    text: str,
    *,
    threshold: float = FREE_TEXT_THRESHOLD,
    max_window: int = MAX_WINDOW,
) -> TextScreening:
    """Find listed entities named inside `text` (remittance information, an address line).

    Returns each entity once, with its best window (the longer window on a tie), best first,
    and a `mixed_script` flag for every word of the text that mixes scripts.
    """
    tokens = _text_tokens(text)
    best: dict[tuple[str, str], TextHit] = {}
    for start, first in enumerate(tokens):
        if not _can_bound_a_name(first):
            continue
        for end in range(start + 1, min(len(tokens), start + max_window) + 1):
            last = tokens[end - 1]
            if not _can_bound_a_name(last):
                continue
            if end - start == 1 and len(first) < MIN_SINGLE_TOKEN:
                continue
            window = " ".join(tokens[start:end])
            for hit in matcher.screen(window, limit=5):
                if hit.score < threshold or not _is_whole_name(hit, end - start):
                    continue
                key = (hit.list_name, hit.entity_id)
                found = TextHit(window, start, hit)
                current = best.get(key)
                if current is None or (hit.score, len(window)) > (
                    current.hit.score,
                    len(current.window),
                ):
                    best[key] = found
    hits = sorted(best.values(), key=lambda h: (-h.hit.score, h.start, h.hit.entity_id))
    flags = tuple(Flag("mixed_script", word) for word in mixed_script_words(text))
    return TextScreening(tuple(hits), flags)
