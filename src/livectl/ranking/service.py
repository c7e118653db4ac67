"""The room's products in the order the room wants them, from signals counted in Redis.

The ranking worker counts each product's signals in 5 s buckets (applied once per stream
entry); one call reads them back with everything else ranking needs, and the pure rules
in ``ranking.rules`` do the rest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from livectl.auth.tokens import Principal
from livectl.bus.keys import APPLIED_TTL_MS, RoomKeys
from livectl.bus.lua import APPLY_ONCE, FRESH_BUCKETS
from livectl.bus.publish import Message
from livectl.bus.scripts import queue_script
from livectl.kit import clock, codec
from livectl.kit.cache import Copy, read_through
from livectl.ranking import repository
from livectl.ranking.models import RankingWeights
from livectl.ranking.rules import BUCKET_S, HORIZON_S, Counts, ProductSpec, count_buckets, rank
from livectl.ranking.schemas import RankingOut, Weights
from livectl.resources import Resources
from livectl.rooms.schemas import ProductOut
from livectl.rooms.service import RoomCache
from livectl.store.engine import transaction

# KEYS: applied set, signal buckets, units sold
# ARGV: entry id, applied ttl ms, bucket, {"<product>:<signal>": n} JSON, {product: units} JSON
_APPLY = (
    APPLY_ONCE
    + """
for name, n in pairs(cjson.decode(ARGV[4])) do
  redis.call('HINCRBY', KEYS[2], ARGV[3] .. ':' .. name, n)
end
for product, n in pairs(cjson.decode(ARGV[5])) do redis.call('HINCRBY', KEYS[3], product, n) end
return 1
"""
)

# KEYS: signal buckets, units sold, explained at, pin, weights, last published order, room
# ARGV: now ms, bucket s, horizon s, 'tick' or 'read'
# A tick also notes that the pinned product is being explained now and prunes old buckets.
_READ = (
    FRESH_BUCKETS
    + """
local now = tonumber(ARGV[1])
local tick = ARGV[4] == 'tick'
local pinned = redis.call('GET', KEYS[4]) or ''
if tick and pinned ~= '' then redis.call('HSET', KEYS[3], pinned, now) end
local width = tonumber(ARGV[2])
local from = math.floor(now / 1000 / width) - math.floor(tonumber(ARGV[3]) / width)
local fresh = fresh_buckets(KEYS[1], from, tick)
return {fresh, redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3]), pinned,
        redis.call('GET', KEYS[5]) or '', redis.call('GET', KEYS[6]) or '',
        redis.call('HGET', KEYS[7], 'json') or ''}
"""
)


def _bucket_rows(flat: Sequence[Any]) -> list[tuple[int, str, str, int]]:
    rows = []
    for name, n in codec.int_fields(flat).items():
        bucket, _, rest = name.partition(":")
        product_id, _, signal = rest.rpartition(":")
        rows.append((int(bucket), product_id, signal, n))
    return rows


def product_specs(products: Sequence[ProductOut]) -> list[ProductSpec]:
    return [
        ProductSpec(p.id, (p.name, *p.aliases), stock=p.stock, sold_out=p.sold_out)
        for p in products
    ]


@dataclass(frozen=True, slots=True)
class RankingView:
    """Everything ranking reads of a room, in one call."""

    counts: dict[str, Counts]
    sold: dict[str, int]
    explained_at_ms: dict[str, int]
    pinned: str | None
    weights: Weights | None  # None when Redis holds no copy of the room's weights
    published_order: str
    products: list[ProductOut] | None  # None when the room's cached state is missing


class RankingStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._apply = redis.register_script(_APPLY)
        self._read = redis.register_script(_READ)

    async def apply(
        self,
        pipe: Pipeline,
        room: str,
        group: str,
        entry_id: str,
        *,
        signals: Counter[str],
        sold: Counter[str],
        at_ms: int,
    ) -> None:
        """Queue one entry's signals on ``pipe``; applied once, however often it is queued."""
        keys = RoomKeys(room)
        await queue_script(
            pipe,
            self._apply,
            [keys.applied(group, entry_id), keys.ranking_window, keys.ranking_sold],
            [
                entry_id,
                APPLIED_TTL_MS,
                at_ms // 1000 // BUCKET_S,
                codec.dumps(dict(signals)),
                codec.dumps(dict(sold)),
            ],
        )

    async def read(self, room: str, now_ms: int, *, tick: bool) -> RankingView:
        keys = RoomKeys(room)
        buckets, sold, explained, pinned, weights, published, state = await self._read(
            keys=[
                keys.ranking_window,
                keys.ranking_sold,
                keys.ranking_explained,
                keys.pin,
                keys.ranking_weights,
                keys.ranking_published,
                keys.meta,
            ],
            args=[now_ms, BUCKET_S, HORIZON_S, "tick" if tick else "read"],
        )
        return RankingView(
            counts=count_buckets(_bucket_rows(buckets), now_ms / 1000),
            sold=codec.int_fields(sold),
            explained_at_ms=codec.int_fields(explained),
            pinned=codec.text(pinned) or None,
            weights=Weights.model_validate_json(weights) if weights else None,
            published_order=codec.text(published),
            products=[ProductOut.model_validate(p) for p in codec.loads(state)["products"]]
            if state
            else None,
        )


def rank_view(
    view: RankingView, weights: Weights, products: Sequence[ProductOut], now_ms: int
) -> RankingOut:
    return rank(
        product_specs(products),
        view.counts,
        weights,
        sold=view.sold,
        explained_at_ms=view.explained_at_ms,
        pinned=view.pinned,
        now_ms=now_ms,
    )


class RankingService:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self.store = RankingStore(resources.redis)
        self._cache = RoomCache(resources)

    async def ranking(self, room: str, now_ms: int) -> RankingOut:
        state = await self._cache.state(room)  # 404 for an unknown room
        view = await self.store.read(room, now_ms, tick=False)
        return rank_view(view, await self._weights(room, view), state.products, now_ms)

    async def ranked_products(self, room: str, now_ms: int) -> tuple[list[ProductOut], RankingOut]:
        """The room's products in ranked order, each with its rank, score and reasons."""
        state = await self._cache.state(room)  # 404 for an unknown room
        view = await self.store.read(room, now_ms, tick=False)
        ranking = rank_view(view, await self._weights(room, view), state.products, now_ms)
        by_id = {p.id: p for p in state.products}
        products = [
            by_id[item.product_id].model_copy(
                update={"rank": item.rank, "score": item.score, "reasons": item.reasons}
            )
            for item in ranking.items
        ]
        return products, ranking

    async def weights(self, room: str) -> Weights:
        await self._cache.state(room)  # 404 for an unknown room
        return Weights.model_validate_json(await self._stored_weights(room))

    async def set_weights(self, room: str, weights: Weights, principal: Principal) -> Weights:
        """Recorded in PostgreSQL; the Redis copy the ticks read is replaced after the commit."""
        await self._cache.state(room)  # 404 for an unknown room
        async with transaction(self._resources.sessionmaker) as tx:
            await repository.put_weights(
                tx.session,
                RankingWeights(
                    room_id=room,
                    weights=weights.model_dump(),
                    updated_by=principal.sub,
                    updated_at=clock.now_ms(),
                ),
            )

            async def refresh() -> None:
                await self._resources.redis.set(
                    RoomKeys(room).ranking_weights, weights.model_dump_json()
                )

            tx.after_commit(refresh)
        return weights

    async def _weights(self, room: str, view: RankingView) -> Weights:
        if view.weights is not None:
            return view.weights
        return Weights.model_validate_json(await self._stored_weights(room))

    async def _stored_weights(self, room: str) -> bytes:
        """The room's weights as JSON: the Redis copy, or the record (defaults without one),
        copied back to Redis on the way (after a Redis restart or flush)."""

        async def load() -> bytes:
            async with self._resources.sessionmaker() as session:
                row = await repository.get_weights(session, room)
            weights = Weights.model_validate(row.weights) if row else Weights()
            return weights.model_dump_json().encode()

        (weights,) = await read_through(
            self._resources.redis, Copy(RoomKeys(room).ranking_weights, load)
        )
        return weights

    async def tick(self, room: str, now_ms: int) -> None:
        """Push a ``ranking`` when the order has changed; at most once a tick (1 s)."""
        view = await self.store.read(room, now_ms, tick=True)
        products = view.products
        if products is None:
            products = (await self._cache.state(room)).products
        ranking = rank_view(view, await self._weights(room, view), products, now_ms)
        order = ",".join(item.product_id for item in ranking.items)
        if order == view.published_order:
            return
        # Noted after the push: a push that failed is retried on the next tick.
        await self._resources.publisher.publish(room, [Message("ranking", ranking.model_dump())])
        await self._resources.redis.set(RoomKeys(room).ranking_published, order)
