"""The per-room 1 s tick: publishes stats, evaluates time-based rules, closes expired coupons.

Every worker process runs a ticker, but each room is ticked by one of them at a time: the
tick of a room is leased (SET NX PX, renewed by its holder), so a worker that dies hands its
rooms to another within one lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from livectl.bus.keys import ROOMS, RoomKeys
from livectl.bus.scripts import run_many
from livectl.kit import codec
from livectl.kit.clock import now_ms
from livectl.kit.outages import log_failure

log = logging.getLogger("livectl.tick")

TickHandler = Callable[[str, int], Awaitable[None]]  # (room, now ms)

TICK_S = 1.0
# Rooms ticked at once: each holds a Redis connection while it ticks, and the pool is bounded.
_CONCURRENT_ROOMS = 32
# Long enough to survive a slow tick, short enough that a dead holder's rooms move on fast.
_LEASE_MS = 3000

# KEYS: lease. ARGV: holder, ttl ms. Take the lease if free, renew it if ours.
_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


async def live_rooms(redis: Redis) -> list[str]:
    """Rooms whose cached state says they are live."""
    rooms = sorted(codec.text(r) for r in await redis.smembers(ROOMS))
    if not rooms:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for room in rooms:
            pipe.hget(RoomKeys(room).meta, "json")
        states = await pipe.execute()
    return [
        room
        for room, state in zip(rooms, states, strict=True)
        if state is not None and codec.loads(state)["room"]["status"] == "live"
    ]


class RoomTicker:
    """Ticks the live rooms for the concerns this process runs, each handler under its
    concern's lease: processes running different concerns each tick their own, and a
    concern's ticks of a room stay with one process at a time."""

    def __init__(
        self, redis: Redis, concerns: Mapping[str, Sequence[TickHandler]], *, holder: str
    ) -> None:
        self._redis = redis
        self._concerns = concerns
        self._holder = holder
        self._lease = redis.register_script(_LEASE)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = asyncio.get_running_loop().time()
            try:
                await self.tick_once()
            except RedisError as exc:
                log.warning("tick skipped: %s", exc)
            elapsed = asyncio.get_running_loop().time() - started
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, TICK_S - elapsed))

    async def tick_once(self) -> None:
        if not self._concerns:
            return
        now = now_ms()
        # Every lease of every live room taken or renewed in one round trip.
        wanted = [
            (room, concern) for room in await live_rooms(self._redis) for concern in self._concerns
        ]
        taken = await run_many(
            self._redis,
            self._lease,
            [
                ([RoomKeys(room).tick_lease(concern)], [self._holder, _LEASE_MS])
                for room, concern in wanted
            ],
        )
        held: dict[str, list[TickHandler]] = {}
        for (room, concern), lease in zip(wanted, taken, strict=True):
            if isinstance(lease, Exception):
                raise lease
            if lease:
                held.setdefault(room, []).extend(self._concerns[concern])
        slots = asyncio.Semaphore(_CONCURRENT_ROOMS)
        await asyncio.gather(
            *(self._tick_room(room, handlers, now, slots) for room, handlers in held.items())
        )

    async def _tick_room(
        self, room: str, handlers: Sequence[TickHandler], now: int, slots: asyncio.Semaphore
    ) -> None:
        async with slots:
            for handler in handlers:
                try:
                    await handler(room, now)
                except Exception as exc:
                    # One concern's failure must not stop the others' ticks for this room.
                    log_failure(log, exc, "tick handler %r failed for room %s", handler, room)
