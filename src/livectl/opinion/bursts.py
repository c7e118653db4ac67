"""Burst detection (舆情): is a room turning against the product right now? Pure decisions.

Chat is tallied per room in 5 s buckets (in Redis, ``windows.py``), per signal: each watchlist
category, and ``negative`` for any negative message. A burst is judged on the last few buckets
(the window, at least the last 10 s) against the minutes before (the baseline):

- identical texts count once (a copy-paste wave is the moderation's business, not opinion),
  and so the count is of distinct texts, from at least a minimum number of distinct users;
- the count must reach a floor, be a share of all chat in the window, and stand well above
  what the baseline had in a window of the same length (a room that always grumbles about
  price does not alert on price grumbling);
- a burst mixing categories (假货, 退款 and 投诉 at once) counts as ``watchlist``, any category;
- after an alert the same family stays quiet for a cool-down: ``negative``, or the watchlist
  (its categories and ``watchlist`` together, so one burst is one alert however it grows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BUCKET_MS = 5_000
WINDOW_BUCKETS = 3  # the current bucket and the two before: always the last 10..15 s
BASELINE_BUCKETS = 60  # the 5 minutes before the window
COOL_DOWN_MS = 120_000
# A burst alert whose signal has stayed below its thresholds this long is resolved by the
# system: the room has calmed down, and the console's open list stays about now.
QUIET_MS = 300_000
NEGATIVE = "negative"
ANY_CATEGORY = "watchlist"

Level = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    min_texts: int
    min_users: int
    min_share: float  # of all chat in the window
    over_baseline: float  # times the baseline's texts per window
    critical_texts: int
    critical_users: int


# A category is a specific complaint: a handful of distinct viewers saying it is news.
CATEGORY = Thresholds(
    min_texts=6, min_users=5, min_share=0.03, over_baseline=3.0, critical_texts=15, critical_users=8
)
# Negative chat in general is ordinary (太贵了, 颜色不喜欢): only a room mostly negative counts.
GENERAL = Thresholds(
    min_texts=20,
    min_users=10,
    min_share=0.5,
    over_baseline=2.0,
    critical_texts=40,
    critical_users=20,
)


def thresholds_for(signal: str) -> Thresholds:
    return GENERAL if signal == NEGATIVE else CATEGORY


@dataclass(frozen=True, slots=True)
class Figures:
    """One signal's tally: the window, and the baseline before it."""

    total: int  # chat messages in the window, any kind
    texts: int  # distinct texts with the signal in the window
    users: int  # distinct users who sent them
    baseline_texts: int  # distinct texts with the signal, summed over the baseline buckets
    baseline_buckets: int = BASELINE_BUCKETS

    @property
    def share(self) -> float:
        return self.texts / self.total if self.total else 0.0

    @property
    def baseline_per_window(self) -> float:
        return self.baseline_texts * WINDOW_BUCKETS / max(self.baseline_buckets, 1)


def judge(signal: str, figures: Figures) -> Level | None:
    """The alert level this signal's figures call for, or None."""
    limits = thresholds_for(signal)
    if (
        figures.texts < limits.min_texts
        or figures.users < limits.min_users
        or figures.share < limits.min_share
        or figures.texts < limits.over_baseline * figures.baseline_per_window
    ):
        return None
    if figures.texts >= limits.critical_texts and figures.users >= limits.critical_users:
        return "critical"
    return "warning"


def signals_of(tags: tuple[str, ...], negative: bool) -> tuple[str, ...]:
    """What one message counts towards."""
    return (*tags, *((ANY_CATEGORY,) if tags else ()), *((NEGATIVE,) if negative else ()))


def cool_down_family(signal: str) -> str:
    return NEGATIVE if signal == NEGATIVE else ANY_CATEGORY


def choose(levels: dict[str, tuple[Figures, Level]]) -> list[str]:
    """The signals to alert on among those that passed: ``negative``, and of the watchlist
    family the specific category most said (``watchlist`` only when no category passed)."""
    chosen = [NEGATIVE] if NEGATIVE in levels else []
    categories = [s for s in levels if s not in (NEGATIVE, ANY_CATEGORY)]
    if categories:
        chosen.append(max(categories, key=lambda s: (levels[s][0].texts, levels[s][0].users, s)))
    elif ANY_CATEGORY in levels:
        chosen.append(ANY_CATEGORY)
    return chosen


def bucket_of(ms: int) -> int:
    return ms // BUCKET_MS


def window_buckets(now_ms: int) -> range:
    current = bucket_of(now_ms)
    return range(current - WINDOW_BUCKETS + 1, current + 1)


def baseline_buckets(now_ms: int) -> range:
    first_of_window = bucket_of(now_ms) - WINDOW_BUCKETS + 1
    return range(first_of_window - BASELINE_BUCKETS, first_of_window)


TITLES = {
    NEGATIVE: "负面评论激增",
    ANY_CATEGORY: "舆情关键词集中出现",
    "refund": "退款诉求集中出现",
    "counterfeit": "质疑假货集中出现",
    "complaint": "投诉举报集中出现",
    "fraud": "指责欺诈集中出现",
    "quality": "质量问题集中出现",
    "logistics": "物流发货抱怨集中出现",
}


def title_of(signal: str, figures: Figures) -> str:
    what = TITLES.get(signal, f"「{signal}」相关评论集中出现")
    return f"{what}：{figures.users} 位观众 {figures.texts} 条（占 {figures.share:.0%}）"
