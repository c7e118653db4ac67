"""The stats concern: every stream entry's effect on the room's counters, applied once."""

from __future__ import annotations

from collections.abc import Sequence

from livectl.bus.consumer import Entry
from livectl.ingest.entries import ENTRIES_PER_ROUND_TRIP
from livectl.kit.chunks import chunks
from livectl.ranking.rules import MentionMatcher
from livectl.ranking.service import product_specs
from livectl.resources import Resources
from livectl.rooms.service import RoomCache
from livectl.stats.counting import EntryCounts
from livectl.stats.service import StatsStore

GROUP = "stats"


class StatsWorker:
    def __init__(self, resources: Resources, counts: EntryCounts) -> None:
        self._redis = resources.redis
        self._cache = RoomCache(resources)
        self._store = StatsStore(resources.redis, resources.settings)
        self._counts = counts

    async def handle(self, room: str, entries: Sequence[Entry]) -> None:
        state = await self._cache.state_or_none(room)
        matcher = MentionMatcher(product_specs(state.products if state else []))
        for chunk in chunks(entries, ENTRIES_PER_ROUND_TRIP):
            async with self._redis.pipeline(transaction=False) as pipe:
                counts = self._counts.of(room, chunk, matcher)
                for entry, counted in zip(chunk, counts, strict=True):
                    await self._store.apply(pipe, room, GROUP, entry.id, figures=counted.figures)
                await pipe.execute()
