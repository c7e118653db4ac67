"""Each stream entry's effect on its room's figures, worked out once per worker process.

Stats and ranking count the same events: ranking's signals are a part of what an entry adds
to the room's figures (``ranking.rules.entry_signals``). A process that runs both groups
reads every entry once per group, and parsing the entry and matching its chat against the
products were most of either group's work. So the first of them to reach an entry counts it,
and keeps the result until the other has taken it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from livectl.bus.consumer import Entry
from livectl.ingest.entries import entry_events
from livectl.kit import codec
from livectl.ranking.rules import MentionMatcher, entry_signals
from livectl.stats.rules import entry_effect

# Bytes of counted entries kept. Two groups that follow a room in one process can be a few
# hundred entries apart (each finds a new room on its own scan, a second apart at most, and
# reads up to ``worker_batch`` entries at a time); an entry of 1,000 events keeps ~30 KB.
# A group that falls further behind counts its own entries: slower, never wrong.
_KEEP_BYTES = 24 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CountedEntry:
    """What one entry adds, as the two groups apply it: the room's figures
    (``EntryEffect.wire``, encoded for the stats script), ranking's signals and units sold."""

    figures: bytes
    signals: Counter[str]
    sold: Counter[str]


def count_entry(entry: Entry, matcher: MentionMatcher) -> CountedEntry:
    effect = entry_effect(entry_events(entry.fields), matcher)
    signals, sold = entry_signals(effect.totals, effect.intents)
    return CountedEntry(codec.dumps(effect.wire()), signals, sold)


@dataclass(slots=True)
class _Kept:
    counted: CountedEntry
    matcher_key: tuple[tuple[str, tuple[str, ...]], ...]
    takers_left: int


class EntryCounts:
    """``sharers``: how many groups of this process count each entry through this object."""

    def __init__(self, sharers: int, keep_bytes: int = _KEEP_BYTES) -> None:
        self._sharers = sharers
        self._keep_bytes = keep_bytes
        self._kept: dict[tuple[str, str], _Kept] = {}
        self._kept_bytes = 0

    def of(
        self, room: str, entries: Sequence[Entry], matcher: MentionMatcher
    ) -> list[CountedEntry]:
        return [self._counted(room, entry, matcher) for entry in entries]

    def _counted(self, room: str, entry: Entry, matcher: MentionMatcher) -> CountedEntry:
        key = (room, entry.id)
        kept = self._kept.get(key)
        # The product list can change between two groups' reads: an entry counted against
        # another list is not this group's to take.
        if kept is not None and kept.matcher_key == matcher.key:
            kept.takers_left -= 1
            if not kept.takers_left:
                self._forget(key)
            return kept.counted
        counted = count_entry(entry, matcher)
        if self._sharers > 1:
            if kept is not None:
                self._forget(key)
            self._kept[key] = _Kept(counted, matcher.key, self._sharers - 1)
            self._kept_bytes += len(counted.figures)
            while self._kept_bytes > self._keep_bytes:
                self._forget(next(iter(self._kept)))  # the oldest
        return counted

    def _forget(self, key: tuple[str, str]) -> None:
        self._kept_bytes -= len(self._kept.pop(key).counted.figures)
