"""The stats concern: every stream entry's effect on the room's counters, applied once."""

from __future__ import annotations

from collections.abc import Sequence

from livectl.bus.consumer import Entry
from livectl.ingest.entries import ENTRIES_PER_ROUND_TRIP, entry_events
from livectl.kit.chunks import chunks
from livectl.ranking.rules import MentionMatcher
from livectl.ranking.service import product_specs
from livectl.resources import Resources
from livectl.rooms.service import RoomCache
from livectl.stats.rules import entry_effect
from livectl.stats.service import StatsStore

GROUP = "stats"


class StatsWorker:
    def __init__(self, resources: Resources) -> None:
        self._redis = resources.redis
        self._cache = RoomCache(resources)
        self._store = StatsStore(resources.redis, resources.settings)

    async def handle(self, room: str, entries: Sequence[Entry]) -> None:
        state = await self._cache.state_or_none(room)
        products = state.products if state else []
        matcher = MentionMatcher(product_specs(products))
        known = {p.id for p in products}
        for chunk in chunks(entries, ENTRIES_PER_ROUND_TRIP):
            async with self._redis.pipeline(transaction=False) as pipe:
                for entry in chunk:
                    events = entry_events(entry.fields)
                    effect = entry_effect(events, matcher, known)
                    await self._store.apply(pipe, room, GROUP, entry.id, effect=effect)
                await pipe.execute()
