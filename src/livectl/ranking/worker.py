"""The ranking concern: each product's signals (mentions, intent, clicks, carts, orders) and
units sold, counted once per stream entry."""

from __future__ import annotations

from collections.abc import Sequence

from livectl.bus.consumer import Entry
from livectl.ingest.entries import ENTRIES_PER_ROUND_TRIP, entry_ms
from livectl.kit.chunks import chunks
from livectl.ranking.rules import MentionMatcher
from livectl.ranking.service import RankingStore, product_specs
from livectl.resources import Resources
from livectl.rooms.service import RoomCache
from livectl.stats.counting import EntryCounts

GROUP = "ranking"


class RankingWorker:
    def __init__(self, resources: Resources, counts: EntryCounts) -> None:
        self._redis = resources.redis
        self._cache = RoomCache(resources)
        self._store = RankingStore(resources.redis)
        self._counts = counts

    async def handle(self, room: str, entries: Sequence[Entry]) -> None:
        state = await self._cache.state_or_none(room)
        if state is None:
            return  # no products to rank in a room that does not exist
        matcher = MentionMatcher(product_specs(state.products))
        for chunk in chunks(entries, ENTRIES_PER_ROUND_TRIP):
            async with self._redis.pipeline(transaction=False) as pipe:
                counts = self._counts.of(room, chunk, matcher)
                for entry, counted in zip(chunk, counts, strict=True):
                    if counted.signals or counted.sold:
                        await self._store.apply(
                            pipe,
                            room,
                            GROUP,
                            entry.id,
                            signals=counted.signals,
                            sold=counted.sold,
                            # Counted when it came, not when this worker got to it: a worker
                            # that lags must not make old mentions look fresh.
                            at_ms=entry_ms(entry.id),
                        )
                await pipe.execute()
