"""Per-message sentiment in -1..1, offline, from the shipped lexicon (``lexicon.py``).

Chat is folded first (``kit.text``), then scanned once with an Aho-Corasick automaton taking
the longest entry at each place, so 不错 is one positive word and not 不 + 错. The scan keeps
the rules a viewer's sentence follows:

- a negator right before a word turns it (不好 is negative; 不是假货, 没有退款的必要 are not
  complaints: a negated negative counts as slightly positive at most);
- an intensifier scales it (太贵 is worse than 贵, 有点贵 milder);
- after a contrast (但是, 不过, 就是) the clause that follows outweighs what came before;
- a plain question asks, it neither complains nor praises (会起球吗? 好用吗?), unless it is
  rhetorical (怎么还不发货?).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from functools import cache

import ahocorasick

from livectl.kit.text import Normalised, fold
from livectl.opinion import lexicon

# How far (in characters of folded text) a negator or intensifier reaches forward.
_REACH = 1
_NEGATED_NEGATIVE = 0.2  # 不贵, 不是假货: relief at most, never a complaint
_NEGATED_POSITIVE = 0.8  # 不好看 is nearly as bad as 难看
_BEFORE_CONTRAST = 0.4
_AFTER_CONTRAST = 1.5
_PLAIN_QUESTION = 0.2
NEGATIVE_BELOW = -0.25
POSITIVE_ABOVE = 0.25


class Kind(IntEnum):
    POLARITY = 0
    NEGATOR = 1
    INTENSIFIER = 2
    CONTRAST = 3
    NEUTRAL = 4
    RHETORICAL = 5


@dataclass(frozen=True, slots=True)
class Term:
    kind: Kind
    weight: float = 0.0  # polarity (+/-) or intensity multiplier
    # A word that is an intensifier when a polarity word follows at once (好贵) and a
    # polarity word of its own otherwise (好!).
    intensity: float = 0.0


@cache
def _automaton() -> ahocorasick.Automaton:
    terms: dict[str, Term] = {}
    for word in lexicon.NEUTRAL:
        terms[word] = Term(Kind.NEUTRAL)
    for word in lexicon.RHETORICAL:
        terms[word] = Term(Kind.RHETORICAL)
    for word in lexicon.CONTRAST:
        terms[word] = Term(Kind.CONTRAST)
    for word in lexicon.NEGATORS:
        terms[word] = Term(Kind.NEGATOR)
    for word, factor in lexicon.INTENSIFIERS.items():
        terms[word] = Term(Kind.INTENSIFIER, factor)
    for word, weight in lexicon.NEGATIVE.items():
        terms[word] = Term(Kind.POLARITY, -weight)
    for word, weight in lexicon.POSITIVE.items():
        previous = terms.get(word)
        intensity = previous.weight if previous and previous.kind is Kind.INTENSIFIER else 0.0
        terms[word] = Term(Kind.POLARITY, weight, intensity)
    automaton = ahocorasick.Automaton()
    for word, term in terms.items():
        # Chat is folded before the scan (好好 -> 好, yyds -> yds), so the words must be too.
        folded = fold(word)
        automaton.add_word(folded, (len(folded), term))
    automaton.make_automaton()
    return automaton


# One pass each, in C: a question word anywhere, or the A-not-A question (贵不贵, 好不好用).
_ASKS = re.compile("|".join(map(re.escape, lexicon.QUESTION_WORDS)) + r"|(\w)[不没]\1")
_NOT_ASKING = re.compile("|".join(map(re.escape, lexicon.NOT_ASKING)))


def is_question(raw: str, words: str) -> bool:
    if any(mark in raw for mark in lexicon.QUESTION_MARKS):
        return True
    words = _NOT_ASKING.sub("", words)
    return words.endswith(lexicon.QUESTION_ENDINGS) or _ASKS.search(words) is not None


@dataclass(frozen=True, slots=True)
class Reading:
    score: float
    question: bool
    rhetorical: bool
    # (negator start, last start it reaches) in folded text: keywords there are not meant.
    negated: tuple[tuple[int, int], ...]


def read(raw: str, normalised: Normalised) -> Reading:
    words = normalised.text
    matches = [
        (end + 1 - length, end + 1, term) for end, (length, term) in _automaton().iter_long(words)
    ]
    total = 0.0
    negated_until = -1
    intensity = 1.0
    intensified_until = -1
    rhetorical = False
    rhetorical_end = -1
    negated: list[tuple[int, int]] = []
    for i, (start, end, term) in enumerate(matches):
        if term.kind is Kind.NEGATOR and start != rhetorical_end:
            negated_until = end + _REACH
            negated.append((start, negated_until))
        elif term.kind is Kind.INTENSIFIER or (term.intensity and _modifies(words, matches, i)):
            intensity = term.intensity or term.weight
            intensified_until = end + _REACH
        elif term.kind is Kind.CONTRAST:
            total *= _BEFORE_CONTRAST
            intensity, intensified_until = _AFTER_CONTRAST, len(words)
        elif term.kind is Kind.RHETORICAL:
            # 怎么还不退款: the 不 right after it is part of the reproach, not a negation.
            rhetorical, rhetorical_end = True, end
        elif term.kind is Kind.POLARITY:
            weight = term.weight * (intensity if start <= intensified_until else 1.0)
            if start <= negated_until:
                weight = -weight * (_NEGATED_POSITIVE if weight > 0 else _NEGATED_NEGATIVE)
                negated_until = -1  # a negator turns one word: 不贵很实惠 is praise
            total += weight
    total += sum(lexicon.EMOJI_POLARITY.get(char, 0.0) for char in normalised.emoji)
    question = is_question(raw, words)
    if question and not rhetorical:
        total *= _PLAIN_QUESTION
    return Reading(max(-1.0, min(1.0, total)), question, rhetorical, tuple(negated))


def _modifies(words: str, matches: list[tuple[int, int, Term]], i: int) -> bool:
    """Whether a word that may be either (好) modifies what follows rather than praising:
    好贵 and 好冷 are not praise, 好! and 挺好的 are."""
    end = matches[i][1]
    return end < len(words) and words[end] not in lexicon.PARTICLES


def label_of(score: float) -> str:
    if score <= NEGATIVE_BELOW:
        return "negative"
    if score >= POSITIVE_ABOVE:
        return "positive"
    return "neutral"
