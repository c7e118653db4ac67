"""Moderation on a real stack: blocked words and their evasions, mutes with expiry, slow mode,
floods and bot waves, manual hides, the log of who did what, and hostile input."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from livectl.auth.tokens import Role
from livectl.bus.keys import RoomKeys
from livectl.moderation import rules
from livectl.moderation.rules import Sighting, hide_reason
from tests.conftest import Console, Stack, chat, open_console, wait_for
from tests.test_opinion import alerts_of, send

SENTINEL = "看得见的消息"


async def consoles(stack: Stack, room: str) -> tuple[Console, Console]:
    host = await open_console(stack, room, role=Role.HOST)
    assistant = await open_console(stack, room, role=Role.ASSISTANT)
    for console in (host, assistant):
        await console.next_of("snapshot")
    return host, assistant


async def chats_until_sentinel(console: Console) -> list[dict[str, Any]]:
    seen = []
    while True:
        message = await console.next_of("chat", timeout=10)
        seen.append(message["data"])
        if message["data"]["text"] == SENTINEL:
            return seen


async def test_blocked_words_and_their_evasions_are_hidden_from_the_host(
    stack: Stack, room: str, admin: httpx.AsyncClient
) -> None:
    put = await admin.put(
        f"/v1/rooms/{room}/moderation", json={"blocked_words": ["竞品", "某宝"], "slow_mode_s": 0}
    )
    assert put.status_code == 200
    assert put.json()["blocked_words"] == ["竞品", "某宝"]
    assert "加微信" in put.json()["default_blocked_words"]
    host, assistant = await consoles(stack, room)
    blocked = ["去 竞 品 买更便宜", "某寶更便宜", "加 微 信 领红包", "ＶＸ：abc123", "加微微微信"]
    await send(
        stack,
        room,
        [chat(t, user=f"b{n}") for n, t in enumerate(blocked)] + [chat(SENTINEL, user="ok")],
    )
    host_seen = await chats_until_sentinel(host)
    assert [m["text"] for m in host_seen] == [SENTINEL]
    staff_seen = await chats_until_sentinel(assistant)
    assert [m["text"] for m in staff_seen] == [*blocked, SENTINEL]
    assert all(m["hidden"] and m["hidden_reason"] == "blocked_word" for m in staff_seen[:-1])
    assert staff_seen[-1]["hidden"] is False
    for console in (host, assistant):
        await console.socket.close()


async def test_the_relay_reads_the_rooms_rules_back_when_their_redis_copies_are_lost(
    stack: Stack, room: str, admin: httpx.AsyncClient, redis: Redis
) -> None:
    moderation = {"blocked_words": ["竞品"], "slow_mode_s": 0}
    assert (await admin.put(f"/v1/rooms/{room}/moderation", json=moderation)).status_code == 200
    watchlist = {"categories": {"color": ["掉色"]}}
    assert (await admin.put(f"/v1/rooms/{room}/watchlist", json=watchlist)).status_code == 200
    copies = [RoomKeys(room).moderation, RoomKeys(room).watchlist]
    assert await redis.delete(*copies) == 2  # as after a Redis restart without persistence
    host, assistant = await consoles(stack, room)
    await send(stack, room, [chat("去竞品买", user="b1"), chat("衣服洗了就掉色", user="c1")])
    await send(stack, room, [chat(SENTINEL, user="ok")])
    staff_seen = await chats_until_sentinel(assistant)
    assert [(m["text"], m["hidden"], m["tags"]) for m in staff_seen] == [
        ("去竞品买", True, []),
        ("衣服洗了就掉色", False, ["color"]),
        (SENTINEL, False, []),
    ]
    assert await redis.exists(*copies) == 2
    for console in (host, assistant):
        await console.socket.close()


@pytest.mark.slow
async def test_a_muted_user_is_hidden_until_the_mute_expires(
    stack: Stack, room: str, admin: httpx.AsyncClient
) -> None:
    host, assistant = await consoles(stack, room)
    muted = await admin.post(f"/v1/rooms/{room}/mutes", json={"user_id": "loud", "seconds": 3})
    assert muted.status_code == 201
    # The mute record reaches the staff, with who did it; never the host.
    record = await assistant.next_of("moderation")
    assert (record["data"]["action"], record["data"]["target"]) == ("mute", "loud")
    assert record["data"]["actor"] == "test-admin"
    await send(stack, room, [chat("我又来了", user="loud"), chat(SENTINEL, user="ok")])
    assert [m["text"] for m in await chats_until_sentinel(host)] == [SENTINEL]
    hidden, _ = await chats_until_sentinel(assistant)
    assert (hidden["hidden"], hidden["hidden_reason"]) == (True, "muted")

    # Past the expiry (server time; both run on this machine).
    await asyncio.sleep(max(0.0, muted.json()["until"] / 1000 - time.time()) + 0.5)
    await send(stack, room, [chat("我可以说话了", user="loud"), chat(SENTINEL, user="ok")])
    assert [m["text"] for m in await chats_until_sentinel(host)] == ["我可以说话了", SENTINEL]
    for console in (host, assistant):
        await console.socket.close()


async def test_a_bot_wave_is_hidden_and_raises_one_alert(
    stack: Stack, room: str, admin: httpx.AsyncClient
) -> None:
    host, assistant = await consoles(stack, room)
    wave = "点我主页领取免费大礼包"
    await send(stack, room, [chat(wave, user=f"bot{n}") for n in range(12)])
    await send(stack, room, [chat(SENTINEL, user="ok")])
    host_seen = await chats_until_sentinel(host)
    # The first senders pass (a wave is only one once enough users sent it); the rest are hidden.
    assert [m["text"] for m in host_seen].count(wave) == rules.WAVE_USERS - 1
    staff_seen = await chats_until_sentinel(assistant)
    assert [m.get("hidden_reason") for m in staff_seen if m["text"] == wave].count(
        "bot_wave"
    ) == 12 - (rules.WAVE_USERS - 1)

    async def alerted() -> bool:
        return any(a["kind"] == "bot_wave" for a in await alerts_of(admin, room))

    await wait_for(alerted, timeout=10)
    (alert,) = [a for a in await alerts_of(admin, room) if a["kind"] == "bot_wave"]
    assert alert["samples"][0]["text"] == wave
    actions = (await admin.get(f"/v1/rooms/{room}/moderation/actions")).json()
    assert [(a["action"], a["target"], a["actor"]) for a in actions] == [
        ("auto_hide", "bot_wave", "system")
    ]
    for console in (host, assistant):
        await console.socket.close()


async def test_one_user_repeating_is_a_flood(stack: Stack, room: str) -> None:
    host, assistant = await consoles(stack, room)
    await send(stack, room, [chat("买买买", user="spammer") for _ in range(5)])
    await send(stack, room, [chat(SENTINEL, user="ok")])
    assert [m["text"] for m in await chats_until_sentinel(host)].count("买买买") == (
        rules.FLOOD_REPEATS - 1
    )
    reasons = [m.get("hidden_reason") for m in await chats_until_sentinel(assistant)]
    assert reasons.count("flood") == 5 - (rules.FLOOD_REPEATS - 1)
    for console in (host, assistant):
        await console.socket.close()


async def test_slow_mode_hides_a_second_message_within_the_interval(
    stack: Stack, room: str, admin: httpx.AsyncClient
) -> None:
    put = await admin.put(
        f"/v1/rooms/{room}/moderation", json={"blocked_words": [], "slow_mode_s": 30}
    )
    assert put.json()["slow_mode_s"] == 30
    host, assistant = await consoles(stack, room)
    await send(stack, room, [chat("第一条", user="fast"), chat("第二条", user="fast")])
    await send(stack, room, [chat(SENTINEL, user="ok")])
    assert [m["text"] for m in await chats_until_sentinel(host)] == ["第一条", SENTINEL]
    second = (await chats_until_sentinel(assistant))[1]
    assert (second["text"], second["hidden_reason"]) == ("第二条", "slow_mode")
    for console in (host, assistant):
        await console.socket.close()


async def test_a_hide_removes_the_message_and_is_logged_with_who_did_it(
    stack: Stack, room: str
) -> None:
    host, assistant = await consoles(stack, room)
    await send(stack, room, [chat("这个主播不行", user="v1", event_id="msg-1")])
    assert (await host.next_of("chat"))["data"]["event_id"] == "msg-1"
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
        url = f"/v1/rooms/{room}/messages/msg-1/hide"
        refused = await client.post(url, headers=stack.headers(Role.HOST, [room]))
        assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
        hidden = await client.post(url, headers=stack.headers(Role.ASSISTANT, [room]))
        assert hidden.status_code == 204
        removal = await host.next_of("moderation")
        assert removal["data"] == {"action": "hide", "event_id": "msg-1"}
        records = [await assistant.next_of("moderation") for _ in range(2)]
        staff_record = next(r["data"] for r in records if "actor" in r["data"])
        assert (staff_record["action"], staff_record["target"]) == ("hide", "msg-1")
        assert staff_record["actor"] == "test-assistant"
        log = await client.get(
            f"/v1/rooms/{room}/moderation/actions", headers=stack.headers(Role.ASSISTANT, [room])
        )
        assert [(a["action"], a["target"], a["actor"]) for a in log.json()] == [
            ("hide", "msg-1", "test-assistant")
        ]
    for console in (host, assistant):
        await console.socket.close()


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("post", "mutes", {"user_id": "u1", "seconds": 0}, 422),
        ("post", "mutes", {"user_id": "u1", "seconds": 1.5}, 422),
        ("post", "mutes", {"user_id": "u1", "seconds": 10**9}, 422),
        ("post", "mutes", {"user_id": "../../etc", "seconds": 10}, 422),
        ("post", "mutes", {"user_id": "u1"}, 422),
        ("post", "mutes", {"user_id": "u1", "seconds": "10"}, 422),
        ("put", "moderation", {"blocked_words": ["x"] * 501}, 422),
        ("put", "moderation", {"blocked_words": ["···"]}, 422),
        ("put", "moderation", {"blocked_words": ["x" * 33]}, 422),
        ("put", "moderation", {"blocked_words": [], "slow_mode_s": -1}, 422),
        ("put", "moderation", {"blocked_words": [], "slow_mode_s": 3601}, 422),
        ("put", "moderation", {"blocked_words": "加微信"}, 422),
        ("put", "moderation", [], 422),
        ("post", "messages/a%20b/hide", None, 422),
        ("post", "messages/" + "x" * 65 + "/hide", None, 422),
    ],
)
async def test_malformed_moderation_input_is_refused_and_changes_nothing(
    room: str, admin: httpx.AsyncClient, method: str, path: str, body: Any, status: int
) -> None:
    answer = await admin.request(method, f"/v1/rooms/{room}/{path}", json=body)
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error", "detail"}
    settings = (await admin.get(f"/v1/rooms/{room}/moderation")).json()
    assert (settings["blocked_words"], settings["slow_mode_s"]) == ([], 0)
    assert (await admin.get(f"/v1/rooms/{room}/moderation/actions")).json() == []


async def test_moderation_needs_the_right_role_and_room(stack: Stack, room: str) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
        mute = {"user_id": "u1", "seconds": 10}
        settings = {"blocked_words": ["x"]}
        calls = [
            ("post", f"/v1/rooms/{room}/mutes", mute, Role.HOST),
            ("put", f"/v1/rooms/{room}/moderation", settings, Role.ASSISTANT),
            ("get", f"/v1/rooms/{room}/moderation/actions", None, Role.HOST),
            ("delete", f"/v1/rooms/{room}/mutes/u1", None, Role.HOST),
        ]
        for method, url, body, too_low in calls:
            assert (await client.request(method, url, json=body)).status_code == 401
            low = await client.request(
                method, url, json=body, headers=stack.headers(too_low, [room])
            )
            assert (low.status_code, low.json()["error"]) == (403, "forbidden")
            other = await client.request(
                method, url, json=body, headers=stack.headers(Role.CONTROLLER, ["other-room"])
            )
            assert other.status_code == 403
        unknown = await client.post(
            "/v1/rooms/no-such-room/mutes", json=mute, headers=stack.headers(Role.ADMIN)
        )
        assert (unknown.status_code, unknown.json()["error"]) == (404, "room_not_found")


async def test_every_moderation_action_is_recorded_in_postgresql(
    stack: Stack, room: str, admin: httpx.AsyncClient
) -> None:
    await admin.put(f"/v1/rooms/{room}/moderation", json={"blocked_words": ["竞品"]})
    await admin.post(f"/v1/rooms/{room}/mutes", json={"user_id": "u9", "seconds": 60})
    await admin.delete(f"/v1/rooms/{room}/mutes/u9")
    await admin.post(f"/v1/rooms/{room}/messages/m-9/hide")
    engine = create_async_engine(stack.database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT action, target, actor FROM moderation_actions "
                        "WHERE room_id = :room ORDER BY id"
                    ),
                    {"room": room},
                )
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in rows] == [
        ("settings", None, "test-admin"),
        ("mute", "u9", "test-admin"),
        ("unmute", "u9", "test-admin"),
        ("hide", "m-9", "test-admin"),
    ]


def test_the_hide_rules_in_order() -> None:
    clear = Sighting(muted_until=0, repeats=1, senders=1, slowed=False)
    wave = Sighting(muted_until=0, repeats=1, senders=rules.WAVE_USERS, slowed=False)
    long_text = "点我主页领取免费大礼包"

    def reason(words: str, seen: Sighting, *, blocked: bool = False, asking: bool = False) -> Any:
        return hide_reason(words, blocked=blocked, asking=asking, at_ms=1000, seen=seen)

    assert reason("好看", clear) is None
    assert reason("好看", clear, blocked=True) == "blocked_word"
    assert reason("好看", Sighting(2000, 1, 1, False)) == "muted"
    assert reason("好看", Sighting(999, 1, 1, False)) is None  # the mute had expired
    assert reason(long_text, wave) == "bot_wave"
    assert reason("666", wave) is None  # crowds chant short things
    assert reason("什么时候发货呀主播", wave, asking=True) is None  # and ask alike
    assert reason("好看", Sighting(0, rules.FLOOD_REPEATS, 1, False)) == "flood"
    assert reason("好看", Sighting(0, 1, 1, True)) == "slow_mode"
