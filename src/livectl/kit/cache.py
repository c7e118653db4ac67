"""A Redis copy of a PostgreSQL record, read through on a miss."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from redis.asyncio import Redis


async def read_through(redis: Redis, key: str, load: Callable[[], Awaitable[bytes]]) -> bytes:
    cached = await redis.get(key)
    if isinstance(cached, bytes):
        return cached
    loaded = await load()
    # NX: a writer that committed meanwhile has SET the newer copy; this older read must not
    # replace it (writers SET unconditionally after their commit).
    await redis.set(key, loaded, nx=True)
    return loaded
