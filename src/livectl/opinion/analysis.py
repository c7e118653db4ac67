"""Everything the opinion and moderation rules read off one chat message, in one pass."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from livectl.kit.text import normalise
from livectl.opinion.keywords import Watchlist, question_intents
from livectl.opinion.sentiment import NEGATIVE_BELOW, read


@dataclass(frozen=True, slots=True)
class Analysis:
    words: str  # folded text: what matching, dedupe and flood detection compare
    sentiment: float
    tags: tuple[str, ...]
    intents: tuple[str, ...]

    @property
    def negative(self) -> bool:
        return self.sentiment <= NEGATIVE_BELOW


# The relay analyses every chat, and so do a worker's opinion and rules groups, while a live
# repeats itself (扣1, 想要, the same question): the most recent answers are kept. An Analysis
# is immutable, and a room's watchlist is one object per process while it is unchanged
# (opinion.service.compile_watchlist), so a changed watchlist is a new key.
@lru_cache(maxsize=8192)
def analyse(raw: str, watchlist: Watchlist) -> Analysis:
    normalised = normalise(raw)
    reading = read(raw, normalised)
    return Analysis(
        words=normalised.text,
        sentiment=round(reading.score, 3),
        tags=watchlist.tags(normalised.text, reading),
        intents=question_intents(normalised.text, reading),
    )
