"""The outbound channel: contiguous seq, exactly-once publishing, history kept and trimmed."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from livectl.bus.keys import Channel, RoomKeys
from livectl.bus.publish import Message, Publisher, seq_of
from livectl.config import Settings
from livectl.kit import codec
from tests.conftest import unique, xrange


def publisher(redis: Redis, **limits: int) -> Publisher:
    return Publisher(redis, Settings(secret="s" * 48, **limits))  # type: ignore[arg-type]


async def kept_seqs(redis: Redis, room: str) -> list[int]:
    return [
        seq_of(entry_id)
        for entry_id, _ in await xrange(redis, RoomKeys(room).channel(Channel.CONSOLE))
    ]


async def test_concurrent_publishers_get_one_contiguous_sequence(redis: Redis) -> None:
    room = unique("seq")
    bus = publisher(redis)
    await asyncio.gather(*(bus.publish(room, [Message("chat", {"n": i})] * 10) for i in range(20)))
    entries = await xrange(redis, RoomKeys(room).channel(Channel.CONSOLE))
    frames = [codec.loads(fields[b"f"]) for _, fields in entries]
    assert [f["seq"] for f in frames] == list(range(1, 201))
    assert [seq_of(entry_id) for entry_id, _ in entries] == list(range(1, 201))
    assert all(f["type"] == "chat" and isinstance(f["ts"], int) for f in frames)


async def test_publish_once_publishes_a_token_once(redis: Redis) -> None:
    room = unique("once")
    bus = publisher(redis)
    batch = [("entry-1", [Message("chat", {"text": "a"}), Message("chat", {"text": "b"})])]
    await bus.publish_once(room, batch)
    await bus.publish_once(room, batch)
    await bus.publish_once(room, [("entry-2", [Message("chat", {"text": "c"})])])
    assert await kept_seqs(redis, room) == [1, 2, 3]


async def test_recent_messages_are_kept_even_past_the_minimum(redis: Redis) -> None:
    room = unique("young")
    bus = publisher(redis, history_min=10, history_ms=600_000)
    for _ in range(30):
        await bus.publish(room, [Message("chat", {})] * 10)
    assert await kept_seqs(redis, room) == list(range(1, 301))


async def test_old_messages_are_trimmed_down_to_the_minimum(redis: Redis) -> None:
    room = unique("old")
    bus = publisher(redis, history_min=50, history_ms=1)
    for _ in range(10):
        await bus.publish(room, [Message("chat", {})] * 30)
    await asyncio.sleep(1.1)  # the clock has one-second steps
    # One call, so all 300 carry the same second however busy the machine is.
    await bus.publish(room, [Message("chat", {})] * 300)
    kept = await kept_seqs(redis, room)
    assert kept == list(range(kept[0], 601))  # contiguous up to the latest
    assert len(kept) >= 300  # this second's messages and at least the minimum stay
    assert kept[0] > 1  # the older second was trimmed


async def test_history_never_passes_the_maximum(redis: Redis) -> None:
    room = unique("max")
    bus = publisher(redis, history_min=10, history_ms=600_000, history_max=200)
    for _ in range(20):
        await bus.publish(room, [Message("chat", {})] * 50)
    kept = await kept_seqs(redis, room)
    assert kept[-1] == 1000
    assert 200 <= len(kept) < 400  # MINID ~ trims whole nodes only: a little over the cap


async def test_pipelined_scripts_survive_a_redis_that_forgot_them(redis: Redis) -> None:
    # After a Redis restart its script cache is empty: every pipelined call is answered
    # NOSCRIPT, then loaded and sent again, once; the batch lands exactly once.
    room = unique("noscript")
    bus = publisher(redis)
    await bus.publish_once(room, [("warm", [Message("chat", {"n": 0})])])
    await redis.script_flush()
    await bus.publish_once(room, [("a", [Message("chat", {"n": 1})]), ("b", [Message("x", 2)])])
    await bus.publish_once(room, [("a", [Message("chat", {"n": 1})])])
    assert await kept_seqs(redis, room) == [1, 2, 3]
