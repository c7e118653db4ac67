"""The ranking concern: each product's signals (mentions, intent, clicks, carts, orders) and
units sold, counted once per stream entry."""

from __future__ import annotations

from collections.abc import Sequence

from livectl.bus.consumer import Entry
from livectl.ingest.entries import ENTRIES_PER_ROUND_TRIP, entry_events, entry_ms
from livectl.kit.chunks import chunks
from livectl.ranking.rules import MentionMatcher, entry_signals
from livectl.ranking.service import RankingStore, product_specs
from livectl.resources import Resources
from livectl.rooms.service import RoomCache

GROUP = "ranking"


class RankingWorker:
    def __init__(self, resources: Resources) -> None:
        self._redis = resources.redis
        self._cache = RoomCache(resources)
        self._store = RankingStore(resources.redis)

    async def handle(self, room: str, entries: Sequence[Entry]) -> None:
        state = await self._cache.state_or_none(room)
        if state is None:
            return  # no products to rank in a room that does not exist
        matcher = MentionMatcher(product_specs(state.products))
        known = {p.id for p in state.products}
        for chunk in chunks(entries, ENTRIES_PER_ROUND_TRIP):
            async with self._redis.pipeline(transaction=False) as pipe:
                for entry in chunk:
                    events = entry_events(entry.fields)
                    signals, sold = entry_signals(events, matcher, known)
                    if signals or sold:
                        await self._store.apply(
                            pipe,
                            room,
                            GROUP,
                            entry.id,
                            signals=signals,
                            sold=sold,
                            # Counted when it came, not when this worker got to it: a worker
                            # that lags must not make old mentions look fresh.
                            at_ms=entry_ms(entry.id),
                        )
                await pipe.execute()
