"""Workers: every accepted event archived exactly once, even across a kill -9 mid-batch."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import httpx
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from livectl.auth.tokens import Role
from livectl.bus.consumer import Entry, StreamConsumer
from livectl.bus.keys import ROOMS, RoomKeys
from livectl.config import Settings
from livectl.ingest.appender import Appender
from livectl.ingest.validation import parse_batch
from livectl.kit import codec
from tests.conftest import Stack, chat, duplicates, unique, wait_for, xrange


async def archived(database_url: str, room: str) -> tuple[int, int]:
    """(rows, distinct event ids) archived for the room."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text(
                        "SELECT count(*), count(DISTINCT event_id) FROM events"
                        " WHERE room_id = :room"
                    ),
                    {"room": room},
                )
            ).one()
            return int(row[0]), int(row[1])
    finally:
        await engine.dispose()


async def test_posted_events_are_archived_once(stack: Stack, room: str) -> None:
    async with httpx.AsyncClient(
        base_url=stack.base_url, headers=stack.headers(Role.INGEST, [room])
    ) as client:
        await client.post(f"/v1/rooms/{room}/events", json=[chat(f"m{i}") for i in range(100)])
        await client.post(
            f"/v1/rooms/{room}/events", json=[chat(f"id{i}", event_id=f"e{i}") for i in range(10)]
        )
        await client.post(
            f"/v1/rooms/{room}/events", json=[chat(f"id{i}", event_id=f"e{i}") for i in range(10)]
        )

    async def all_archived() -> bool:
        return await archived(stack.database_url, room) == (110, 110)

    await wait_for(all_archived)


async def test_a_worker_killed_mid_batch_loses_nothing_and_archives_nothing_twice(
    stack: Stack, redis: Redis
) -> None:
    # Its own Redis database keeps the session's worker out of this room: only the workers
    # started here consume it.
    redis_url = stack.redis_url.rsplit("/", 1)[0] + "/7"
    env = {**stack.env, "LIVECTL_REDIS_URL": redis_url, "LIVECTL_WORKER_BATCH": "20"}
    room = unique("crash")
    settings = Settings(redis_url=redis_url, database_url=stack.database_url, secret="s" * 48)
    scratch = Redis.from_url(redis_url)
    appender = Appender(scratch, settings)
    total = 0
    # 400 entries of 50 events, archived 20 entries (1,000 rows) per transaction.
    for start in range(0, 20_000, 50):
        batch = parse_batch(
            codec.dumps([chat(f"m{start + i}") for i in range(50)]), max_events=1000
        )
        await appender.submit(room, batch, duplicates)
        total += 50
    await scratch.sadd(ROOMS, room)

    victim = stack.spawn("victim", "worker", "--group", "archive", env=env)

    async def frozen_with_a_batch_in_hand() -> bool:
        """Stop the worker where it is; keep it stopped once it holds a batch it has not
        acknowledged (between an ack and its next read it holds none: let it go on)."""
        rows, _ = await archived(stack.database_url, room)
        if not 0 < rows < total:  # (the group exists once a row is archived)
            return False
        os.kill(victim.pid, signal.SIGSTOP)
        if (await scratch.xpending(RoomKeys(room).events, "archive"))["pending"]:
            return True
        os.kill(victim.pid, signal.SIGCONT)
        return False

    await wait_for(frozen_with_a_batch_in_hand, timeout=30, interval=0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    pending = await scratch.xpending(RoomKeys(room).events, "archive")
    assert pending["pending"] > 0, "the kill should land while a batch is in hand"

    survivor = stack.spawn("survivor", "worker", "--group", "archive", env=env)
    try:

        async def everything_archived() -> bool:
            return await archived(stack.database_url, room) == (total, total)

        await wait_for(everything_archived, timeout=60)

        async def nothing_pending() -> bool:
            info = await scratch.xpending(RoomKeys(room).events, "archive")
            return int(info["pending"]) == 0

        await wait_for(nothing_pending, timeout=10)
    finally:
        survivor.terminate()
        survivor.wait()
        await scratch.delete(RoomKeys(room).events)
        await scratch.srem(ROOMS, room)
        await scratch.aclose()


def consumer_settings(stack: Stack, **timing: int) -> Settings:
    """For a StreamConsumer driven by the test itself: a Redis database of its own (db 8), so
    it follows only the rooms the test adds, and quick scans."""
    return Settings(
        redis_url=stack.redis_url.rsplit("/", 1)[0] + "/8",
        database_url=stack.database_url,
        secret="s" * 48,
        **{"room_scan_ms": 50, **timing},  # type: ignore[arg-type]
    )


async def test_a_poison_entry_is_dead_lettered_and_the_rest_flow(stack: Stack) -> None:
    settings = consumer_settings(
        stack, reclaim_idle_ms=50, reclaim_every_ms=50, worker_block_ms=50, max_deliveries=2
    )
    client = Redis.from_url(settings.redis_url or "")
    room = unique("poison")
    stream = RoomKeys(room).events
    await client.xadd(stream, {"e": codec.dumps([chat("fine")])})
    await client.xadd(stream, {"e": b"[{not json"})
    await client.xadd(stream, {"e": codec.dumps([chat("also fine")])})
    await client.sadd(ROOMS, room)
    handled: dict[str, str] = {}  # entry id -> text: delivery is at-least-once

    async def handler(_: str, entries: Any) -> None:
        for entry in entries:
            assert isinstance(entry, Entry)
            (event,) = codec.loads(entry.fields[b"e"])
            handled[entry.id] = event["text"]

    stop = asyncio.Event()
    consumer = StreamConsumer(client, settings, group="test", handler=handler, name="t1")
    task = asyncio.create_task(consumer.run(stop))
    try:

        async def parked() -> bool:
            return int(await client.xlen(RoomKeys(room).dead_letters)) == 1

        await wait_for(parked, timeout=10)
    finally:
        stop.set()
        await task
    assert sorted(handled.values()) == ["also fine", "fine"]
    dead = await xrange(client, RoomKeys(room).dead_letters)
    assert dead[0][1][b"e"] == b"[{not json"
    assert dead[0][1][b"group"] == b"test"
    assert int((await client.xpending(stream, "test"))["pending"]) == 0
    await client.delete(stream, RoomKeys(room).dead_letters)
    await client.srem(ROOMS, room)
    await client.aclose()


async def test_a_lingering_group_takes_a_trickle_in_one_batch_and_stops_at_once(
    stack: Stack,
) -> None:
    """A bulk group reads a room with no backlog at most every linger: the entries that land
    meanwhile come as one batch. A stop does not wait the linger out."""
    settings = consumer_settings(stack, worker_block_ms=100)
    client = Redis.from_url(settings.redis_url or "")
    room = unique("linger")
    stream = RoomKeys(room).events
    await client.xadd(stream, {"e": codec.dumps([chat("0")])})
    await client.sadd(ROOMS, room)
    batches: list[list[str]] = []

    async def handler(_: str, entries: Any) -> None:
        batches.append([codec.loads(entry.fields[b"e"])[0]["text"] for entry in entries])

    async def batches_read(count: int) -> bool:
        return len(batches) == count

    stop = asyncio.Event()
    consumer = StreamConsumer(
        client, settings, group="bulk", handler=handler, name="b1", linger_ms=60_000
    )
    task = asyncio.create_task(consumer.run(stop))
    try:
        await wait_for(lambda: batches_read(1))
        for n in range(1, 5):  # a trickle, while the group lingers
            await client.xadd(stream, {"e": codec.dumps([chat(str(n))])})
        await asyncio.sleep(0.5)
        assert batches == [["0"]]  # nothing read during the linger
        stop.set()
        await asyncio.wait_for(task, 5)  # not after the 60 s linger
    finally:
        stop.set()
        await task
    # The next consumer of the group (another process, a restart) gets the trickle in one read.
    stop = asyncio.Event()
    task = asyncio.create_task(
        StreamConsumer(
            client, settings, group="bulk", handler=handler, name="b2", linger_ms=60_000
        ).run(stop)
    )
    try:
        await wait_for(lambda: batches_read(2))
    finally:
        stop.set()
        await task
    assert batches == [["0"], ["1", "2", "3", "4"]]
    await client.delete(stream)
    await client.srem(ROOMS, room)
    await client.aclose()


async def test_an_ordered_consumer_stopping_cleanly_hands_its_room_on_at_once(
    stack: Stack,
) -> None:
    """A rolling restart of the console relay: the room's chat flows on within a second, in
    order, rather than waiting out the stopped relay's follow lease (5 s)."""
    settings = consumer_settings(stack, worker_block_ms=100, reclaim_every_ms=50)
    client = Redis.from_url(settings.redis_url or "")
    room = unique("handover")
    stream = RoomKeys(room).events
    await client.sadd(ROOMS, room)
    handled: list[tuple[str, str]] = []  # (consumer, chat text)

    def handler_of(name: str) -> Any:
        async def handler(_: str, entries: Any) -> None:
            for entry in entries:
                (event,) = codec.loads(entry.fields[b"e"])
                handled.append((name, event["text"]))

        return handler

    def relay(name: str) -> StreamConsumer:
        return StreamConsumer(
            client, settings, group="relay", handler=handler_of(name), name=name, ordered=True
        )

    first_stop, second_stop = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(relay("first").run(first_stop))
    second: asyncio.Task[None] | None = None
    try:
        await client.xadd(stream, {"e": codec.dumps([chat("0")])})

        async def first_has_it() -> bool:
            return handled == [("first", "0")]

        await wait_for(first_has_it)
        second = asyncio.create_task(relay("second").run(second_stop))
        await asyncio.sleep(0.3)  # the second relay finds the room leased and waits
        first_stop.set()
        await first
        stopped = asyncio.get_running_loop().time()
        for n in range(1, 6):
            await client.xadd(stream, {"e": codec.dumps([chat(str(n))])})

        async def all_relayed() -> bool:
            return len(handled) == 6

        await wait_for(all_relayed)
        took_s = asyncio.get_running_loop().time() - stopped
    finally:
        first_stop.set()
        second_stop.set()
        await asyncio.gather(first, *([second] if second else []))
        await client.delete(stream, RoomKeys(room).follow_lease("relay"))
        await client.srem(ROOMS, room)
        await client.aclose()
    assert [text for _, text in handled] == ["0", "1", "2", "3", "4", "5"]
    assert {name for name, _ in handled[1:]} == {"second"}
    # Polling for the lease takes up to a second; waiting it out would take five.
    assert took_s < 2.5


async def test_an_ended_room_takes_events_for_its_grace_then_is_let_go(
    stack: Stack, room: str, admin: httpx.AsyncClient, redis: Redis
) -> None:
    # TEST_ENV gives ended rooms 3 s of grace.
    ingest = {"Authorization": f"Bearer {stack.token(Role.INGEST, [room])}"}
    assert (await admin.post(f"/v1/rooms/{room}/end")).status_code == 200
    late = await admin.post(f"/v1/rooms/{room}/events", json=chat("晚到的订单"), headers=ingest)
    assert late.status_code == 202  # within the grace: accepted, and handled like any other
    accepted = 1

    async def refused() -> bool:
        nonlocal accepted
        answer = await admin.post(f"/v1/rooms/{room}/events", json=chat("散场后"), headers=ingest)
        accepted += answer.status_code == 202
        return answer.status_code == 409 and answer.json()["error"] == "room_ended"

    await wait_for(refused, timeout=15)

    async def archived_late_event() -> bool:
        rows, _ = await archived(stack.database_url, room)
        return rows == accepted

    await wait_for(archived_late_event, timeout=15)

    # Drained and past its grace, the room is no longer read by any group: its consumers
    # go idle while the worker goes on.
    async def let_go() -> bool:
        consumers: list[dict[str, Any]] = await redis.xinfo_consumers(
            RoomKeys(room).events, "archive"
        )
        return bool(consumers) and min(c["idle"] for c in consumers) > 3000

    await wait_for(let_go, timeout=20)
