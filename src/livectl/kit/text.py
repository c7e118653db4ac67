"""Chat text as a matcher should read it: what the viewer meant, not how they typed it.

Viewers dodge filters and type in a hurry: full-width letters, traditional characters,
"假 货", "假!货", "假假假货". ``normalise`` folds all of these to 假货 and keeps emoji apart
(they carry sentiment but must not glue words together). Keywords, aliases and blocked words
go through the same function, so both sides of every match are folded alike.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files

# Unicode categories kept as word characters: letters and digits. Everything else (spaces,
# punctuation, symbols, marks, controls) is dropped from the word text.
_WORD_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lo", "Lm", "Nd"})
_EMOJI = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2190-\u21ff\u2300-\u23ff\u3297\u3299]"
)
# Digits are never collapsed: 1000 is not 10.
_REPEATS = re.compile(r"(\D)\1+")
# Whether there is a repeat at all: the same test, in a third of the time of searching with
# the ``+`` (which makes the engine try a repeat at every character).
_ANY_REPEAT = re.compile(r"(\D)\1")


@dataclass(frozen=True, slots=True)
class Normalised:
    text: str
    emoji: tuple[str, ...]


class _Fold(dict[int, str | None]):
    """A ``str.translate`` table built on demand: one lookup per distinct code point seen."""

    def __init__(self, simplified: dict[str, str]) -> None:
        super().__init__()
        self.simplified = simplified

    def __missing__(self, code_point: int) -> str | None:
        # Per character, NFKC turns full-width forms half-width; it is done here, once per
        # code point, because normalising every whole message costs more than the rest.
        compatible = unicodedata.normalize("NFKC", chr(code_point)).casefold()
        folded = "".join(
            self.simplified.get(char, char)
            for char in compatible
            if unicodedata.category(char) in _WORD_CATEGORIES
        )
        self[code_point] = folded or None
        return folded or None


@cache
def _fold_table() -> _Fold:
    # OpenCC's traditional-to-simplified character table (Apache-2.0), shipped in the
    # opencc-python-reimplemented wheel: only its data is used, character by character.
    # Phrase-level conversion does not matter for matching words.
    simplified: dict[str, str] = {}
    table = files("opencc") / "dictionary" / "TSCharacters.txt"
    for line in table.read_text(encoding="utf-8").splitlines():
        traditional, _, targets = line.partition("\t")
        if len(traditional) == 1 and targets:
            simplified[traditional] = targets.split(" ", 1)[0]
    return _Fold(simplified)


# A worker process normalises each chat once per consumer group that reads text (opinion,
# ranking, rules, giveaways), and a live repeats itself (扣1, 想要, the same question): the
# answer is kept for the most recent texts. Normalised is immutable, so sharing it is safe.
@lru_cache(maxsize=8192)
def normalise(raw: str) -> Normalised:
    words = raw.translate(_fold_table())
    # Most messages repeat nothing; searching first is cheaper than always substituting.
    if _ANY_REPEAT.search(words):
        words = _REPEATS.sub(r"\1", words)
    return Normalised(words, tuple(_EMOJI.findall(raw)))


def fold(raw: str) -> str:
    """Only the word text: for keywords, aliases and blocked words."""
    return normalise(raw).text


# NFKC and case folding change no character from here on (the last, U+2FA1D, is a CJK
# compatibility ideograph; a test checks every code point): the planes past it are left
# unscanned, which is most of them.
CHANGED_BELOW = 0x30000


@cache
def _sources_elsewhere() -> dict[str, frozenset[str]]:
    """For every character that some other character folds into: those others. They are
    the characters that NFKC or case folding change, and the traditional ones; every other
    character folds to itself, or to nothing if it is no word character."""
    table = _fold_table()
    changed = [
        char
        for char in map(chr, range(CHANGED_BELOW))
        if unicodedata.normalize("NFKC", char).casefold() != char
    ]
    sources: dict[str, set[str]] = {}
    for char in (*changed, *table.simplified):
        for folded in set(table[ord(char)] or ""):
            sources.setdefault(folded, set()).add(char)
    return {folded: frozenset(chars) for folded, chars in sources.items()}


def fold_sources(char: str) -> frozenset[str]:
    """Every character whose fold holds ``char``. Each character of a text folds on its own
    (repeats are then collapsed, which adds none), so a text's fold holds ``char`` exactly
    when the text holds one of these."""
    table = _fold_table()
    sources = _sources_elsewhere().get(char, frozenset())
    if char in (table[ord(char)] or ""):
        return sources | {char}
    return sources


def screen(words: Iterable[str]) -> re.Pattern[str]:
    """A search that finds something in every raw text whose fold may hold one of the folded
    ``words``: a character that folds into a word's first character. Most chat names none of
    a room's products, and this search costs a fifteenth of folding a text not cached."""
    sources = sorted({source for word in words if word for source in fold_sources(word[0])})
    return re.compile("[" + "".join(map(re.escape, sources)) + "]" if sources else "(?!)")
