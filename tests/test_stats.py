"""Live numbers: exact where they can be, pushed every second, never doubled, never lost."""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from livectl.auth.tokens import Role
from livectl.bus.keys import ROOMS, RoomKeys
from livectl.config import Settings
from livectl.ingest.appender import Appender
from livectl.ingest.validation import parse_batch
from livectl.kit import codec
from livectl.kit.clock import now_ms
from livectl.ranking.rules import MentionMatcher
from livectl.resources import Resources
from livectl.stats.rules import entry_effect
from livectl.stats.service import StatsService, StatsStore
from tests.conftest import Stack, chat, create_room, duplicates, open_console, unique, wait_for

USERS = 1000


def scripted_events() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A live's worth of known events, and the figures they must add up to."""
    events: list[dict[str, Any]] = [
        {"type": "enter", "user": {"id": f"v{i}", "new": i % 10 < 3, "fan": i % 5 == 0}}
        for i in range(USERS)
    ]
    events += [
        chat("口红还有吗" if i % 4 == 0 else f"主播好{i}", user=f"v{i % USERS}") for i in range(500)
    ]
    likes = [(i % 7) + 1 for i in range(300)]
    events += [{"type": "like", "count": n, "user": {"id": f"v{i}"}} for i, n in enumerate(likes)]
    events += [{"type": "follow", "user": {"id": f"v{i}"}} for i in range(40)]
    events += [{"type": "share", "user": {"id": f"v{i}"}} for i in range(25)]
    for product, clicks, carts in (("sku-1", 80, 20), ("sku-2", 30, 5)):
        events += [{"type": "click", "product_id": product, "user": {"id": "v1"}}] * clicks
        events += [{"type": "cart", "product_id": product, "user": {"id": "v2"}}] * carts
    orders: list[tuple[str | None, int, int]] = [("sku-1", 1 + i % 2, 9900) for i in range(9)]
    orders += [("sku-2", 1, 29900)] * 3 + [(None, 3, 1000)]
    for i, (sku, quantity, price) in enumerate(orders):
        order: dict[str, Any] = {
            "type": "order",
            "user": {"id": f"v{i}"},
            "order": {"id": f"o{i}", "quantity": quantity, "amount": quantity * price},
        }
        if sku:
            order["product_id"] = sku
        events.append(order)
    events += [{"type": "leave", "user": {"id": f"v{i}"}} for i in range(100)]
    gmv = sum(q * p for _, q, p in orders)
    expected = {
        "comments": 500,
        "likes": sum(likes),
        "follows": 40,
        "shares": 25,
        "views": USERS,
        "orders": len(orders),
        "items": sum(q for _, q, _ in orders),
        "gmv": gmv,
        "aov": gmv // len(orders),
        "online": USERS - 100,
    }
    return events, expected


EXPECTED_FUNNEL = {
    "sku-1": {"mentions": 125, "clicks": 80, "carts": 20, "orders": 9, "quantity": 13},
    "sku-2": {"mentions": 0, "clicks": 30, "carts": 5, "orders": 3, "quantity": 3},
}


async def post_events(stack: Stack, room: str, events: list[dict[str, Any]]) -> None:
    async with httpx.AsyncClient(
        base_url=stack.base_url, headers=stack.headers(Role.INGEST, [room]), timeout=30
    ) as client:
        for start in range(0, len(events), 500):
            reply = await client.post(f"/v1/rooms/{room}/events", json=events[start : start + 500])
            assert reply.status_code == 202, reply.text
            assert reply.json()["rejected"] == []


async def stats_of(admin: httpx.AsyncClient, room: str) -> dict[str, Any]:
    reply = await admin.get(f"/v1/rooms/{room}/stats")
    assert reply.status_code == 200, reply.text
    stats: dict[str, Any] = reply.json()
    return stats


def exact_figures(stats: dict[str, Any]) -> dict[str, Any]:
    funnel = {
        row["product_id"]: {
            k: row[k] for k in ("mentions", "clicks", "carts", "orders", "quantity")
        }
        for row in stats["funnel"]
        if row["product_id"] in EXPECTED_FUNNEL
    }
    return {k: stats[k] for k in ("online", *scripted_events()[1])} | {"funnel": funnel}


async def group_caught_up(redis: Redis, room: str, group: str) -> bool:
    stream = RoomKeys(room).events
    info = {codec.text(g["name"]): g for g in await redis.xinfo_groups(stream)}
    last = codec.text((await redis.xinfo_stream(stream))["last-generated-id"])
    return (
        group in info
        and codec.text(info[group]["last-delivered-id"]) == last
        and int(info[group]["pending"]) == 0
    )


async def test_a_scripted_live_adds_up_exactly(
    stack: Stack, admin: httpx.AsyncClient, redis: Redis
) -> None:
    room = await create_room(admin)
    events, expected = scripted_events()
    console = await open_console(stack, room)
    live = await open_console(stack, room, role=Role.PLAYER, channel="live")
    await post_events(stack, room, events)
    want = expected | {"funnel": EXPECTED_FUNNEL}

    async def all_counted() -> bool:
        return exact_figures(await stats_of(admin, room)) == want

    await wait_for(all_counted, timeout=30)
    stats = await stats_of(admin, room)
    assert abs(stats["uv"] - USERS) <= USERS // 100
    assert stats["new_viewer_share"] == pytest.approx(0.3, abs=0.01)
    assert stats["fan_share"] == pytest.approx(0.2, abs=0.01)
    assert stats["comments_per_min"] == 500  # all within the last minute
    funnel = {row["product_id"]: row for row in stats["funnel"]}
    assert funnel["sku-1"]["cart_rate"] == 0.25
    assert funnel["sku-2"]["gmv"] == 3 * 29900

    # Pushed at least once a second while live; the console sees the same figures.
    pushes: list[dict[str, Any]] = []
    while len(pushes) < 4:
        envelope = await console.next_of("stats", timeout=10)
        if envelope["data"]["comments"] == 500:
            pushes.append(envelope)
    assert exact_figures(pushes[-1]["data"]) == want
    gaps = [b["ts"] - a["ts"] for a, b in itertools.pairwise(pushes)]
    # One tick a second; the slack is for a busy 2-core test machine.
    assert max(gaps) <= 1600, gaps

    # Viewers get only the viewer-safe figures.
    viewer = await live.next_of("stats", timeout=10)
    while viewer["data"]["likes"] != expected["likes"]:  # pushed before all was counted
        viewer = await live.next_of("stats", timeout=10)
    assert viewer["data"] == {"online": USERS - 100, "likes": expected["likes"]}
    await console.socket.close()
    await live.socket.close()

    fresh = await open_console(stack, room)
    snapshot = await fresh.next_of("snapshot")
    await fresh.socket.close()
    assert exact_figures(snapshot["data"]["stats"]) == want
    fresh = await open_console(stack, room, role=Role.PLAYER, channel="live")
    snapshot = await fresh.next_of("snapshot")
    await fresh.socket.close()
    assert snapshot["data"]["stats"] == {"online": USERS - 100, "likes": expected["likes"]}


async def test_redelivered_and_duplicated_events_do_not_double_any_figure(
    stack: Stack, admin: httpx.AsyncClient, redis: Redis
) -> None:
    room = await create_room(admin)
    events, expected = scripted_events()
    with_ids = [event | {"id": f"e{i}"} for i, event in enumerate(events)]
    await post_events(stack, room, with_ids)
    await post_events(stack, room, with_ids[:700])  # a bridge retrying: ingest dedupes
    want = expected | {"funnel": EXPECTED_FUNNEL}

    async def all_counted() -> bool:
        return exact_figures(await stats_of(admin, room)) == want

    await wait_for(all_counted, timeout=30)
    await wait_for(lambda: group_caught_up(redis, room, "stats"), timeout=30)
    before = await stats_of(admin, room)

    # Every entry delivered again to the stats group, as after a crash before the ack.
    await redis.xgroup_setid(RoomKeys(room).events, "stats", "0")
    await wait_for(lambda: group_caught_up(redis, room, "stats"), timeout=30)
    after = await stats_of(admin, room)
    assert exact_figures(after) == want
    assert after["uv"] == before["uv"]
    assert after["funnel"] == before["funnel"]


@pytest.fixture
async def scratch(stack: Stack) -> AsyncIterator[tuple[Redis, Settings, dict[str, str]]]:
    """A Redis database of its own, so only the workers a test starts consume its rooms."""
    redis_url = stack.redis_url.rsplit("/", 1)[0] + "/11"
    env = {**stack.env, "LIVECTL_REDIS_URL": redis_url, "LIVECTL_WORKER_BATCH": "10"}
    settings = Settings(redis_url=redis_url, database_url=stack.database_url, secret="s" * 48)
    client = Redis.from_url(redis_url)
    yield client, settings, env
    await client.aclose()


async def test_a_stats_worker_killed_and_restarted_loses_no_counts(
    stack: Stack,
    admin: httpx.AsyncClient,
    scratch: tuple[Redis, Settings, dict[str, str]],
) -> None:
    client, settings, env = scratch
    room = await create_room(admin)  # the record in PostgreSQL, which the workers read
    appender = Appender(client, settings)
    total_chats, total_likes = 0, 0
    # 600 entries of 50 events, taken 10 entries at a time.
    for start in range(600):
        batch = [chat(f"m{start}-{i}", user=f"v{i}") for i in range(25)]
        batch += [{"type": "like", "count": 3, "user": {"id": f"v{i}"}} for i in range(25)]
        await appender.submit(room, parse_batch(codec.dumps(batch), max_events=1000), duplicates)
        total_chats += 25
        total_likes += 75
    await appender.close()
    await client.sadd(ROOMS, room)
    store = StatsStore(client, settings)

    async def counted() -> tuple[int, int]:
        totals = (await store.read(room, now_ms(), tick=False)).counters.totals
        return totals.get("comments", 0), totals.get("likes", 0)

    victim = stack.spawn("stats-victim", "worker", "--group", "stats", env=env)
    try:

        async def some_counted() -> bool:
            comments, _ = await counted()
            return 0 < comments < total_chats

        await wait_for(some_counted, timeout=30, interval=0.01)
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
    comments, _ = await counted()
    assert comments < total_chats, "the kill should land before the stream is done"

    survivor = stack.spawn("stats-survivor", "worker", "--group", "stats", env=env)
    try:

        async def everything_counted() -> bool:
            return await counted() == (total_chats, total_likes)

        await wait_for(everything_counted, timeout=60)
        await wait_for(lambda: group_caught_up(client, room, "stats"), timeout=30)
        assert await counted() == (total_chats, total_likes)
    finally:
        survivor.terminate()
        survivor.wait()
        keys = [key async for key in client.scan_iter(f"lc:{{{room}}}*")]
        await client.delete(*keys)
        await client.srem(ROOMS, room)


async def test_each_minute_is_rolled_up_into_postgresql(
    stack: Stack, admin: httpx.AsyncClient, resources: Resources
) -> None:
    room = await create_room(admin)
    await post_events(stack, room, [chat(f"hello {i}") for i in range(42)])

    async def counted() -> bool:
        return bool((await stats_of(admin, room))["comments"] == 42)

    await wait_for(counted)
    service = StatsService(resources)
    now = now_ms()
    minute = now // 60_000
    await service.tick(room, now)  # the first tick of this minute (or a later one)
    await service.tick(room, (minute + 1) * 60_000 + 10)  # the first of the next: rolls up
    reply = await admin.get(f"/v1/rooms/{room}/stats/minutes")
    assert reply.status_code == 200, reply.text
    rolled = {row["minute"]: row["stats"] for row in reply.json()}
    assert rolled[minute * 60_000]["comments"] == 42

    # The live's last minute is rolled up when it ends, with what came in until then.
    await post_events(stack, room, [chat("bye")])

    async def all_in() -> bool:
        return bool((await stats_of(admin, room))["comments"] == 43)

    await wait_for(all_in)
    ended = await admin.post(f"/v1/rooms/{room}/end")
    assert ended.status_code == 200
    rolled = {
        row["minute"]: row["stats"]
        for row in (await admin.get(f"/v1/rooms/{room}/stats/minutes")).json()
    }
    assert rolled[ended.json()["ended_at"] // 60_000 * 60_000]["comments"] == 43


@pytest.mark.parametrize("path", ["stats", "stats/minutes"])
async def test_stats_refuse_bad_callers(stack: Stack, admin: httpx.AsyncClient, path: str) -> None:
    room = await create_room(admin)
    other = await create_room(admin)
    expired = stack.token(Role.HOST, [room], ttl_s=-60)
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
        url = f"/v1/rooms/{room}/{path}"
        cases = [
            ({}, 401, "unauthorized"),
            ({"Authorization": "Bearer not-a-token"}, 401, "unauthorized"),
            ({"Authorization": f"Bearer {expired}"}, 401, "unauthorized"),
            (stack.headers(Role.PLAYER, [room]), 403, "forbidden"),
            (stack.headers(Role.INGEST, [room]), 403, "forbidden"),
            (stack.headers(Role.HOST, [other]), 403, "forbidden"),
        ]
        for headers, status, error in cases:
            reply = await client.get(url, headers=headers)
            assert (reply.status_code, reply.json()["error"]) == (status, error), headers
            assert set(reply.json()) == {"error", "detail"}
        host = stack.headers(Role.HOST)
        missing = await client.get(f"/v1/rooms/{unique('nope')}/{path}", headers=host)
        assert (missing.status_code, missing.json()["error"]) == (404, "room_not_found")
        hostile = await client.get(f"/v1/rooms/a%20b%3Cscript%3E/{path}", headers=host)
        assert (hostile.status_code, hostile.json()["error"]) == (422, "validation_error")
        too_long = await client.get(f"/v1/rooms/{'r' * 65}/{path}", headers=host)
        assert (too_long.status_code, too_long.json()["error"]) == (422, "validation_error")
        assert (await client.get(url, headers=stack.headers(Role.HOST, [room]))).status_code == 200


async def test_vanished_viewers_time_out_and_their_visits_count_in_dwell_time(
    stack: Stack, admin: httpx.AsyncClient, resources: Resources
) -> None:
    room = await create_room(admin)
    await post_events(stack, room, [{"type": "enter", "user": {"id": f"v{i}"}} for i in range(3)])
    await post_events(stack, room, [{"type": "leave", "user": {"id": "v0"}}])

    async def two_online() -> bool:
        stats = await stats_of(admin, room)
        return bool(stats["online"] == 2 and stats["views"] == 3)

    await wait_for(two_online)
    assert (await stats_of(admin, room))["avg_dwell_s"] >= 0  # v0's visit: closed, ~0 s

    store = StatsStore(resources.redis, resources.settings)
    later = now_ms() + resources.settings.online_timeout_ms + 60_000
    read = await store.read(room, later, tick=True)  # a tick long after: v1, v2 vanished
    assert read.counters.online == 0
    assert read.counters.totals["sessions"] == 3
    # Their visits end at their last sign of life, not when the tick noticed.
    assert read.counters.totals["dwell_ms"] < 60_000


async def test_a_visit_lasts_from_its_first_sign_of_life_to_its_leave(
    resources: Resources,
) -> None:
    """The stats script itself, entry by entry: a viewer who enters, chats 30 s later and
    leaves 45 s after entering spent exactly 45 s; one who stays is still online."""
    room = unique("dwell")
    store = StatsStore(resources.redis, resources.settings)
    matcher = MentionMatcher([])
    start = now_ms()
    steps: list[tuple[int, list[dict[str, Any]]]] = [
        (0, [{"type": "enter", "user": {"id": "a"}}, {"type": "enter", "user": {"id": "b"}}]),
        (30_000, [chat("m1", user="a")]),
        (45_000, [{"type": "leave", "user": {"id": "a"}}]),
    ]
    try:
        for offset, events in steps:
            entry_id = f"{start + offset}-0"
            figures = codec.dumps(entry_effect(events, matcher).wire())
            async with resources.redis.pipeline(transaction=False) as pipe:
                await store.apply(pipe, room, "stats", entry_id, figures=figures)
                await pipe.execute()
        read = await store.read(room, start + 50_000, tick=False)
        assert (read.counters.totals["sessions"], read.counters.totals["dwell_ms"]) == (1, 45_000)
        assert read.counters.online == 1
    finally:
        keys = [key async for key in resources.redis.scan_iter(f"lc:{{{room}}}*")]
        await resources.redis.delete(*keys)


async def test_pinned_time_is_the_product_exposure(stack: Stack, admin: httpx.AsyncClient) -> None:
    room = await create_room(admin)
    assert (await admin.post(f"/v1/rooms/{room}/products/sku-3/pin")).status_code == 200

    async def exposed() -> bool:
        funnel = {row["product_id"]: row for row in (await stats_of(admin, room))["funnel"]}
        return bool(funnel["sku-3"]["exposure_s"] >= 2 and funnel["sku-1"]["exposure_s"] == 0)

    await wait_for(exposed, timeout=15)


async def test_an_entry_of_thousands_of_viewers_is_applied_whole(
    stack: Stack, admin: httpx.AsyncClient, resources: Resources
) -> None:
    room = await create_room(admin)
    # One stream entry, as the ingest flusher writes when many batches arrive at once: more
    # viewers than one Lua call may pass to a command at once.
    events = [{"type": "enter", "user": {"id": f"v{i}", "new": True}} for i in range(9000)]
    events += [{"type": "leave", "user": {"id": f"v{i}"}} for i in range(0, 9000, 2)]
    appender = Appender(resources.redis, resources.settings)
    await appender.submit(
        room, parse_batch(codec.dumps(events), max_events=len(events)), duplicates
    )
    await appender.close()

    async def applied() -> bool:
        stats = await stats_of(admin, room)
        return bool(stats["views"] == 9000 and stats["online"] == 4500)

    await wait_for(applied, timeout=15)
    stats = await stats_of(admin, room)
    assert abs(stats["uv"] - 9000) <= 90
    assert stats["new_viewer_share"] == pytest.approx(1.0, abs=0.02)


async def test_a_tick_after_a_long_pause_prunes_every_stale_bucket(
    admin: httpx.AsyncClient, resources: Resources
) -> None:
    room = await create_room(admin, start=False)  # not ticked by the stack's worker
    now = now_ms()
    old_second = now // 1000 - 3600
    stale: dict[FieldT, EncodableT] = {f"{old_second - i}:comments": 1 for i in range(9000)}
    await resources.redis.hset(RoomKeys(room).stats_window, mapping=stale)
    read = await StatsStore(resources.redis, resources.settings).read(room, now, tick=True)
    assert read.counters.window == {}
    assert await resources.redis.hlen(RoomKeys(room).stats_window) == 0


async def test_rates_count_events_when_they_came_not_when_a_lagging_worker_got_to_them(
    stack: Stack, admin: httpx.AsyncClient, redis: Redis
) -> None:
    room = await create_room(admin)
    # A backlog the worker reaches two minutes late: an entry appended then, as ingest does.
    two_minutes_ago = now_ms() - 120_000
    await redis.xadd(
        RoomKeys(room).events,
        {"e": codec.dumps([chat(f"早到{i}", user=f"v{i}") for i in range(10)])},
        id=f"{two_minutes_ago}-0",
    )
    await post_events(stack, room, [chat("刚到", user="v99")])

    async def all_counted() -> bool:
        return bool((await stats_of(admin, room))["comments"] == 11)

    await wait_for(all_counted, timeout=15)
    assert (await stats_of(admin, room))["comments_per_min"] == 1
