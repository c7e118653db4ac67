"""Everything the opinion and moderation rules read off one chat message, in one pass."""

from __future__ import annotations

from dataclasses import dataclass

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


def analyse(raw: str, watchlist: Watchlist) -> Analysis:
    normalised = normalise(raw)
    reading = read(raw, normalised)
    return Analysis(
        words=normalised.text,
        sentiment=round(reading.score, 3),
        tags=watchlist.tags(normalised.text, reading),
        intents=question_intents(normalised.text, reading),
    )
