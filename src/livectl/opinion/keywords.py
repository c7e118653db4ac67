"""Keyword matching over folded chat: watchlist categories, blocked words, question intents.

One Aho-Corasick automaton per word list; every word is folded the way chat is, so an
evasion of a word ("假 货", "假貨") still matches it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache

import ahocorasick

from livectl.kit.text import fold
from livectl.opinion import lexicon
from livectl.opinion.sentiment import Reading


class Matcher:
    """Which labelled words occur in a folded text."""

    def __init__(self, labelled: Iterable[tuple[str, str]]) -> None:
        self._automaton = ahocorasick.Automaton()
        for word, label in labelled:
            folded = fold(word)
            if folded:
                self._automaton.add_word(folded, (len(folded), label))
        self._empty = len(self._automaton) == 0
        if not self._empty:
            self._automaton.make_automaton()

    def find(self, words: str) -> list[tuple[int, str]]:
        """(start, label) of every occurrence."""
        if self._empty or not words:
            return []
        return [(end + 1 - length, label) for end, (length, label) in self._automaton.iter(words)]

    def contains(self, words: str) -> bool:
        return bool(self.find(words))


class Watchlist:
    """Categorised keywords (退款 -> refund, 假货 -> counterfeit, ...)."""

    def __init__(self, categories: Mapping[str, Iterable[str]]) -> None:
        self.categories = tuple(categories)
        self._matcher = Matcher(
            (word, category) for category, words in categories.items() for word in words
        )

    def tags(self, words: str, reading: Reading) -> tuple[str, ...]:
        """Categories the viewer means: a negated keyword (不是假货) is not meant, and a plain
        question (会退款吗?) asks rather than complains; a rhetorical one (怎么还不发货?) does."""
        if reading.question and not reading.rhetorical:
            return ()
        found = {
            category
            for start, category in self._matcher.find(words)
            if not _negated(start, reading.negated)
        }
        return tuple(sorted(found))


def _negated(start: int, negated: tuple[tuple[int, int], ...]) -> bool:
    # A negator inside the keyword itself (不发货) does not negate it.
    return any(neg_start < start <= reach for neg_start, reach in negated)


@cache
def default_watchlist() -> Watchlist:
    return Watchlist(lexicon.DEFAULT_WATCHLIST)


@cache
def _intents() -> Matcher:
    return Matcher(
        (phrase, intent)
        for intent, (_, phrases) in lexicon.QUESTION_INTENTS.items()
        for phrase in phrases
    )


def question_intents(words: str, reading: Reading) -> tuple[str, ...]:
    """What a viewer's question is about (价格, 尺码, 发货 ...); empty unless it asks."""
    if not reading.question or reading.rhetorical:
        return ()
    return tuple(sorted({intent for _, intent in _intents().find(words)}))
