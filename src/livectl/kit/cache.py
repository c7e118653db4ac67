"""Redis copies of PostgreSQL records, read through on a miss."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class Copy:
    """Where a record's Redis copy lives, and how to load the record when it is missing."""

    key: str
    load: Callable[[], Awaitable[bytes]]


async def read_through(redis: Redis, *copies: Copy) -> list[bytes]:
    """Each record as its copy holds it, every copy in one round trip (MGET: the keys of one
    room share its hash slot); a missing copy is loaded from its record and set."""
    found = await redis.mget([copy.key for copy in copies])
    records = []
    for copy, cached in zip(copies, found, strict=True):
        if isinstance(cached, bytes):
            records.append(cached)
            continue
        loaded = await copy.load()
        # NX: a writer that committed meanwhile has SET the newer copy; this older read must
        # not replace it (writers SET unconditionally after their commit).
        await redis.set(copy.key, loaded, nx=True)
        records.append(loaded)
    return records
