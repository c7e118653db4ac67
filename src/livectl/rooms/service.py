"""Rooms, their products and the pinned product.

PostgreSQL holds the record; Redis holds the copy every request and socket reads (one GET),
rewritten after each commit and reloaded from PostgreSQL whenever it is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from livectl.auth.tokens import ALL_ROOMS, Principal
from livectl.bus.keys import ROOMS, Channel, RoomKeys
from livectl.bus.publish import Message
from livectl.errors import (
    Forbidden,
    ProductNotFound,
    RoomExists,
    RoomNotFound,
    ValidationFailed,
)
from livectl.kit import codec
from livectl.kit.clock import now_ms
from livectl.resources import Resources
from livectl.rooms import repository
from livectl.rooms.models import Product, Room
from livectl.rooms.rules import RoomAction, next_status
from livectl.rooms.schemas import PinOut, ProductIn, ProductOut, RoomCreate, RoomOut, RoomStatus
from livectl.store.engine import Transaction

# KEYS: the room's cached state. ARGV: version, JSON. Writes only if newer than what is there.
_CACHE_IF_NEWER = """
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if tonumber(ARGV[1]) > current then
  redis.call('HSET', KEYS[1], 'v', ARGV[1], 'json', ARGV[2])
  return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class RoomState:
    room: RoomOut
    products: list[ProductOut]


def _room_out(room: Room, pinned: str | None, product_count: int) -> RoomOut:
    return RoomOut(
        id=room.id,
        title=room.title,
        currency=room.currency,
        status=room.status,
        created_at=room.created_at,
        started_at=room.started_at,
        ended_at=room.ended_at,
        pinned_product_id=pinned,
        product_count=product_count,
    )


def _product_out(product: Product, rank: int) -> ProductOut:
    return ProductOut(
        id=product.id,
        name=product.name,
        aliases=list(product.aliases),
        price=product.price,
        stock=product.stock,
        sold_out=product.sold_out,
        rank=rank,
    )


class RoomCache:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._redis: Redis = resources.redis
        self._cache_if_newer = self._redis.register_script(_CACHE_IF_NEWER)

    async def state(self, room_id: str) -> RoomState:
        keys = RoomKeys(room_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.meta, "json")
            pipe.get(keys.pin)
            cached, pinned = await pipe.execute()
        pin = codec.text_or_none(pinned)
        if cached is None:
            return await self.reload(room_id, pin)
        data: dict[str, Any] = codec.loads(cached)
        room = RoomOut.model_validate(data["room"] | {"pinned_product_id": pin})
        return RoomState(room, [ProductOut.model_validate(p) for p in data["products"]])

    async def state_or_none(self, room_id: str) -> RoomState | None:
        """For workers: a stream of a room with no record has nothing to look up."""
        try:
            return await self.state(room_id)
        except RoomNotFound:
            return None

    async def reload(self, room_id: str, pin: str | None = None) -> RoomState:
        async with self._resources.sessionmaker() as session:
            room = await repository.get_room(session, room_id)
            if room is None:
                raise RoomNotFound(f"no room {room_id!r}")
            products = await repository.list_products(session, room_id)
        state = RoomState(
            _room_out(room, pin, len(products)),
            [_product_out(p, rank) for rank, p in enumerate(products, start=1)],
        )
        payload = {
            "room": state.room.model_dump(exclude={"pinned_product_id"}),
            "products": [p.model_dump() for p in state.products],
        }
        await self._cache_if_newer(
            keys=[RoomKeys(room_id).meta], args=[room.version, codec.dumps(payload)]
        )
        await self._redis.sadd(ROOMS, room_id)
        return state


class RoomService:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self.cache = RoomCache(resources)

    async def create(self, tx: Transaction, body: RoomCreate, principal: Principal) -> RoomOut:
        if not principal.can_access(body.id):
            raise Forbidden(f"this token is not valid for room {body.id!r}")
        room = Room(
            id=body.id,
            title=body.title,
            currency=body.currency,
            status="created",
            created_by=principal.sub,
            created_at=now_ms(),
        )
        if not await repository.insert_room(tx.session, room):
            raise RoomExists(f"room {body.id!r} exists already")
        tx.after_commit(lambda: self._announce_status(room.id))
        return _room_out(room, None, 0)

    async def rooms(
        self, principal: Principal, status: RoomStatus | None, limit: int
    ) -> list[RoomOut]:
        """The rooms this token may see, newest first, with their pins."""
        visible = None if ALL_ROOMS in principal.rooms else sorted(principal.rooms)
        async with self._resources.sessionmaker() as session:
            rows = await repository.list_rooms(session, visible, status, limit)
        if not rows:
            return []
        pins = await self._resources.redis.mget([RoomKeys(room.id).pin for room, _ in rows])
        return [
            _room_out(room, codec.text_or_none(pin), count)
            for (room, count), pin in zip(rows, pins, strict=True)
        ]

    async def transition(self, tx: Transaction, room_id: str, action: RoomAction) -> None:
        room = await self._locked(tx, room_id)
        status = next_status(room.status, action)
        if status is None:
            return
        room.status = status
        if status == "live":
            room.started_at = now_ms()
        else:
            room.ended_at = now_ms()
        room.version += 1
        tx.after_commit(lambda: self._announce_status(room_id))

    async def set_products(self, tx: Transaction, room_id: str, products: list[ProductIn]) -> None:
        ids = [p.id for p in products]
        if len(set(ids)) != len(ids):
            raise ValidationFailed("product ids must be unique")
        await self._locked(tx, room_id)
        await repository.replace_products(
            tx.session,
            room_id,
            [
                Product(room_id=room_id, position=i, sold_out=False, **p.model_dump())
                for i, p in enumerate(products)
            ],
        )
        await repository.bump_version(tx.session, room_id)
        tx.after_commit(lambda: self._announce_products(room_id))

    async def mark_sold_out(self, tx: Transaction, room_id: str, product_id: str) -> None:
        await self._locked(tx, room_id)
        if not await repository.mark_sold_out(tx.session, room_id, product_id):
            raise ProductNotFound(f"no product {product_id!r} in room {room_id!r}")
        await repository.bump_version(tx.session, room_id)
        tx.after_commit(lambda: self._announce_products(room_id))

    async def pin(self, room_id: str, product_id: str) -> PinOut:
        state = await self.cache.state(room_id)
        if all(p.id != product_id for p in state.products):
            raise ProductNotFound(f"no product {product_id!r} in room {room_id!r}")
        await self._resources.redis.set(RoomKeys(room_id).pin, product_id)
        await self._publish_pin(room_id, product_id)
        return PinOut(product_id=product_id)

    async def unpin(self, room_id: str, product_id: str) -> PinOut:
        await self.cache.state(room_id)  # 404 for an unknown room
        keys = RoomKeys(room_id)
        # Only clear the pin if it is still this product: an unpin racing a newer pin of
        # another product must not clear that one.
        unpinned = await self._resources.redis.eval(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
            "return 0",
            1,
            keys.pin,
            product_id,
        )
        if unpinned:
            await self._publish_pin(room_id, None)
        return PinOut(product_id=codec.text_or_none(await self._resources.redis.get(keys.pin)))

    async def _locked(self, tx: Transaction, room_id: str) -> Room:
        room = await repository.get_room(tx.session, room_id, for_update=True)
        if room is None:
            raise RoomNotFound(f"no room {room_id!r}")
        return room

    async def _refresh(self, room_id: str) -> RoomState:
        pinned = await self._resources.redis.get(RoomKeys(room_id).pin)
        return await self.cache.reload(room_id, codec.text_or_none(pinned))

    async def _announce_status(self, room_id: str) -> None:
        state = await self._refresh(room_id)
        await self._resources.publisher.publish(
            room_id, [Message("room", state.room.model_dump())], (Channel.CONSOLE, Channel.LIVE)
        )

    async def _announce_products(self, room_id: str) -> None:
        state = await self._refresh(room_id)
        await self._resources.publisher.publish(
            room_id, [Message("products", {"items": [p.model_dump() for p in state.products]})]
        )

    async def _publish_pin(self, room_id: str, product_id: str | None) -> None:
        await self._resources.publisher.publish(
            room_id, [Message("pin", {"product_id": product_id})], (Channel.CONSOLE, Channel.LIVE)
        )
