"""Product ranking against the real stack: a burst of mentions goes first within 2 s,
sold out drops to the bottom in the next push, redelivery counts nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from livectl.auth.tokens import Role
from livectl.bus.keys import RoomKeys
from livectl.kit.clock import now_ms
from livectl.ranking.rules import BUCKET_S
from livectl.ranking.service import RankingStore
from tests.conftest import (
    Console,
    Stack,
    chat,
    create_room,
    open_console,
    sql_value,
    unique,
    wait_for,
)
from tests.test_stats import group_caught_up, post_events

Push = tuple[float, dict[str, Any]]  # (when it arrived, envelope)


async def record_rankings(console: Console, pushes: list[Push]) -> None:
    loop = asyncio.get_running_loop()
    with contextlib.suppress(Exception):
        while True:
            envelope = await console.next_of("ranking", timeout=60)
            pushes.append((loop.time(), envelope))


def order(data: dict[str, Any]) -> list[str]:
    return [item["product_id"] for item in data["items"]]


def first_of(push: Push) -> str:
    return order(push[1]["data"])[0]


async def ranking_of(admin: httpx.AsyncClient, room: str) -> dict[str, Any]:
    reply = await admin.get(f"/v1/rooms/{room}/ranking")
    assert reply.status_code == 200, reply.text
    data: dict[str, Any] = reply.json()
    return data


async def test_a_burst_of_mentions_goes_first_and_sold_out_drops_to_the_bottom(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    room = await create_room(admin)
    console = await open_console(stack, room)
    pushes: list[Push] = []
    recorder = asyncio.create_task(record_rankings(console, pushes))
    loop = asyncio.get_running_loop()
    try:
        async with httpx.AsyncClient(
            base_url=stack.base_url, headers=stack.headers(Role.INGEST, [room]), timeout=10
        ) as ingest:
            # 200 chats naming sku-2 by its alias, over about 10 s, from many viewers.
            for burst in range(20):
                texts = ["小黑瓶多少钱", "2号链接", "小 黑 瓶上车", "小黑瓶好用吗"]
                batch = [chat(texts[i % len(texts)], user=f"v{burst}-{i}") for i in range(10)]
                reply = await ingest.post(f"/v1/rooms/{room}/events", json=batch)
                assert reply.status_code == 202
                await asyncio.sleep(0.5)
        last_chat = loop.time()

        async def first_with_all_mentions() -> bool:
            data = await ranking_of(admin, room)
            top = data["items"][0]
            return (
                top["product_id"] == "sku-2" and "200 mentions in the last minute" in top["reasons"]
            )

        await wait_for(first_with_all_mentions, timeout=2.0, interval=0.05)
        assert loop.time() - last_chat <= 2.0

        async def pushed_first() -> bool:
            return any(first_of(push) == "sku-2" for push in pushes)

        await wait_for(pushed_first, timeout=max(0.05, last_chat + 2.0 - loop.time()))
        pushed_at = next(push[0] for push in pushes if first_of(push) == "sku-2")
        assert pushed_at - last_chat <= 2.0
        # Debounced: pushed only when the order changed, at most once per 1 s tick.
        sent_at = [push["ts"] for _, push in pushes]
        assert all(b - a >= 500 for a, b in itertools.pairwise(sent_at)), sent_at
        ranking = await ranking_of(admin, room)
        assert ranking["recommended"] == "sku-2"
        top = ranking["items"][0]
        assert any("asking for the link, price or stock" in r for r in top["reasons"])
        products = (await admin.get(f"/v1/rooms/{room}/products")).json()
        assert [p["id"] for p in products] == order(ranking)
        assert products[0]["rank"] == 1
        assert products[0]["reasons"] == top["reasons"]

        seen = len(pushes)
        reply = await admin.post(f"/v1/rooms/{room}/products/sku-2/sold-out")
        assert reply.status_code == 200

        async def pushed_again() -> bool:
            return len(pushes) > seen

        await wait_for(pushed_again, timeout=5)
        next_push = pushes[seen][1]["data"]
        assert order(next_push)[-1] == "sku-2"
        assert next_push["items"][-1]["reasons"] == ["sold out"]
        assert next_push["recommended"] != "sku-2"
    finally:
        recorder.cancel()
        await console.socket.close()


async def test_redelivered_entries_do_not_count_twice_in_the_ranking(
    stack: Stack, admin: httpx.AsyncClient, redis: Redis
) -> None:
    room = await create_room(admin)
    events: list[dict[str, Any]] = [chat("坚果还有吗", user=f"v{i}") for i in range(30)]
    events += [{"type": "click", "product_id": "sku-3", "user": {"id": "v1"}}] * 10
    events += [{"type": "cart", "product_id": "sku-3", "user": {"id": "v1"}}] * 3
    events += [
        {
            "type": "order",
            "product_id": "sku-3",
            "user": {"id": "v1"},
            "order": {"id": "o1", "quantity": 4, "amount": 4 * 6990},
        }
    ]
    await post_events(stack, room, events)
    want = [
        "30 mentions in the last minute",
        "30 asking for the link, price or stock",
        "1 order in the last minute",
        "cart rate 30%",
        "only 1 left",
    ]

    async def counted() -> bool:
        top = (await ranking_of(admin, room))["items"][0]
        return bool(top["product_id"] == "sku-3" and top["reasons"] == want)

    await wait_for(counted, timeout=15)
    await wait_for(lambda: group_caught_up(redis, room, "ranking"), timeout=30)
    await redis.xgroup_setid(RoomKeys(room).events, "ranking", "0")
    await wait_for(lambda: group_caught_up(redis, room, "ranking"), timeout=30)
    top = (await ranking_of(admin, room))["items"][0]
    assert top["reasons"] == want  # not 60 mentions, and 1 left, not sold out


async def test_weights_are_set_per_room_and_bad_input_changes_nothing(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    room = await create_room(admin)
    other = await create_room(admin)
    url = f"/v1/rooms/{room}/ranking/weights"
    defaults = (await admin.get(url)).json()
    assert defaults["mention"] == 1.0

    # Clicks count for nothing in this room: a clicked product no longer leads.
    clicks = [{"type": "click", "product_id": "sku-3", "user": {"id": f"v{i}"}} for i in range(9)]
    await post_events(stack, room, clicks)

    async def clicks_lead() -> bool:
        return bool(order(await ranking_of(admin, room))[0] == "sku-3")

    await wait_for(clicks_lead, timeout=15)
    reply = await admin.put(url, json={"click": 0})
    assert reply.status_code == 200, reply.text
    assert reply.json() == defaults | {"click": 0.0}
    assert order(await ranking_of(admin, room))[0] == "sku-1"
    assert (await admin.get(f"/v1/rooms/{other}/ranking/weights")).json() == defaults

    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
        controller = stack.headers(Role.CONTROLLER, [room])
        cases: list[tuple[dict[str, str], Any, int, str]] = [
            ({}, {"click": 1}, 401, "unauthorized"),
            (stack.headers(Role.ASSISTANT, [room]), {"click": 1}, 403, "forbidden"),
            (stack.headers(Role.CONTROLLER, [other]), {"click": 1}, 403, "forbidden"),
            (controller, {"click": -1}, 422, "validation_error"),
            (controller, {"click": "1"}, 422, "validation_error"),
            (controller, {"click": True}, 422, "validation_error"),
            (controller, {"fatigue": 2}, 422, "validation_error"),
            (controller, {"clicks": 1}, 422, "validation_error"),
            (controller, [1, 2], 422, "validation_error"),
            (controller, {"click": 1, "x" * 10_000: 1}, 422, "validation_error"),
        ]
        for headers, body, status, error in cases:
            reply = await client.put(url, headers=headers, json=body)
            assert (reply.status_code, reply.json()["error"]) == (status, error), body
            assert set(reply.json()) == {"error", "detail"}
        raw = controller | {"content-type": "application/json"}
        for content in (b'{"click": 1e999}', b'{"click": NaN}', b'{"click": -Infinity}'):
            reply = await client.put(url, headers=raw, content=content)
            assert (reply.status_code, reply.json()["error"]) == (422, "validation_error")
        garbage = await client.put(url, headers=raw, content=b"{not json")
        assert (garbage.status_code, garbage.json()["error"]) == (400, "invalid_json")
        missing = await client.put(
            f"/v1/rooms/{unique('nope')}/ranking/weights",
            headers=stack.headers(Role.CONTROLLER),
            json={"click": 1},
        )
        assert (missing.status_code, missing.json()["error"]) == (404, "room_not_found")
        for path in ("ranking", "ranking/weights", "products"):
            player = stack.headers(Role.PLAYER, [other])
            reply = await client.get(f"/v1/rooms/{room}/{path}", headers=player)
            assert reply.status_code == 403
    assert (await admin.get(url)).json() == defaults | {"click": 0.0}


async def test_a_tick_after_a_long_pause_prunes_every_stale_bucket(
    stack: Stack, admin: httpx.AsyncClient, redis: Redis
) -> None:
    room = await create_room(admin, start=False)  # not ticked by the stack's worker
    now = now_ms()
    old_bucket = now // 1000 // BUCKET_S - 1000
    stale: dict[FieldT, EncodableT] = {f"{old_bucket - i}:sku-1:mention": 1 for i in range(9000)}
    await redis.hset(RoomKeys(room).ranking_window, mapping=stale)
    view = await RankingStore(redis).read(room, now, tick=True)
    assert view.counts == {}
    assert await redis.hlen(RoomKeys(room).ranking_window) == 0


async def test_weights_are_kept_in_postgresql_and_outlive_the_redis_copy(
    stack: Stack, admin: httpx.AsyncClient, redis: Redis
) -> None:
    room = await create_room(admin)
    url = f"/v1/rooms/{room}/ranking/weights"
    assert (await admin.put(url, json={"click": 0, "order": 40})).status_code == 200
    # As after a Redis restart without persistence: the copy is gone, the record is not.
    await redis.delete(RoomKeys(room).ranking_weights)
    weights = (await admin.get(url)).json()
    assert (weights["click"], weights["order"]) == (0.0, 40.0)
    assert await redis.exists(RoomKeys(room).ranking_weights)  # copied back on the way
    stored = await sql_value(
        stack.database_url,
        "SELECT updated_by FROM ranking_weights WHERE room_id = :room",
        room=room,
    )
    assert stored == "test-admin"
