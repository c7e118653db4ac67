"""The per-room tick runs on one worker at a time and moves when its holder stops."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from livectl.bus.keys import RoomKeys
from livectl.bus.tick import RoomTicker, live_rooms
from tests.conftest import create_room


async def test_live_rooms_are_ticked_by_exactly_one_holder(
    admin: httpx.AsyncClient, redis: Redis
) -> None:
    live = await create_room(admin)
    idle = await create_room(admin, start=False)
    assert live in await live_rooms(redis)
    assert idle not in await live_rooms(redis)

    ticks: dict[str, list[str]] = {"a": [], "b": []}

    def recorder(holder: str) -> RoomTicker:
        async def record(room: str, _now: int) -> None:
            if room == live:
                ticks[holder].append(room)

        return RoomTicker(redis, {"test": [record]}, holder=f"test-{holder}-{live}")

    first, second = recorder("a"), recorder("b")
    for _ in range(3):
        await first.tick_once()
        await second.tick_once()
    assert (len(ticks["a"]), len(ticks["b"])) == (3, 0)

    await redis.delete(RoomKeys(live).tick_lease("test"))  # the holder died and its lease ran out
    await second.tick_once()
    await first.tick_once()
    assert (len(ticks["a"]), len(ticks["b"])) == (3, 1)
