"""Giveaways (福袋) against the real gateway, worker, Redis and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
from redis.asyncio import Redis

from livectl.auth.tokens import Role
from livectl.bus.keys import RoomKeys
from livectl.giveaways.rules import verify
from livectl.giveaways.schemas import GiveawaySpec
from livectl.giveaways.service import GiveawayService
from livectl.ingest.entries import RoomEvent
from livectl.resources import Resources
from tests.conftest import Stack, chat, create_room, open_console, sql_value, unique, wait_for

SPEC: dict[str, Any] = {
    "title": "整点福袋",
    "prize": "豆沙色口红",
    "winners": 2,
    "entry": "keyword",
    "keyword": "想要福袋",
    "duration_s": 5,
}


async def start(client: httpx.AsyncClient, room: str, **spec: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/rooms/{room}/giveaways", json=SPEC | spec)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def send(client: httpx.AsyncClient, room: str, events: list[dict[str, Any]]) -> None:
    response = await client.post(f"/v1/rooms/{room}/events", json=events)
    assert response.status_code == 202
    assert response.json()["accepted"] == len(events)


async def drawn(
    client: httpx.AsyncClient, room: str, giveaway: str, timeout: float = 20
) -> dict[str, Any]:
    async def is_drawn() -> bool:
        body = (await client.get(f"/v1/rooms/{room}/giveaways/{giveaway}")).json()
        return bool(body["state"] == "drawn")

    await wait_for(is_drawn, timeout=timeout)
    body: dict[str, Any] = (await client.get(f"/v1/rooms/{room}/giveaways/{giveaway}")).json()
    return body


async def audit(client: httpx.AsyncClient, room: str, giveaway: str) -> dict[str, Any]:
    response = await client.get(f"/v1/rooms/{room}/giveaways/{giveaway}/audit")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def reverify(published: dict[str, Any]) -> bool:
    return verify(
        seed=published["seed"],
        commitment_hex=published["commitment"],
        entries=published["entries"],
        entries_hash_hex=published["entries_hash"],
        winners=published["winners"],
        winner_ids=published["winner_ids"],
    )


async def test_keyword_entries_draw_on_time_and_reverify(
    stack: Stack, admin: httpx.AsyncClient, room: str
) -> None:
    # Sent before the start: it does not count, however late a worker gets to it.
    await send(admin, room, [chat("想要福袋", user="too-early")])
    console = await open_console(stack, room)
    live = await open_console(stack, room, role=Role.PLAYER, channel="live")
    started = await start(admin, room)
    assert started["state"] == "open"
    assert started["entrants"] == 0
    assert len(started["commitment"]) == 64
    assert started["seed"] is None
    snapshot = await open_console(stack, room, role=Role.PLAYER, channel="live")
    in_snapshot = (await snapshot.next_of("snapshot"))["data"]["giveaways"]
    assert [(g["id"], g["state"], g["seed"]) for g in in_snapshot] == [
        (started["id"], "open", None)
    ]
    await snapshot.socket.close()
    pushed = (await console.next_of("giveaway"))["data"]
    assert (pushed["id"], pushed["commitment"], pushed["seed"]) == (
        started["id"],
        started["commitment"],
        None,
    )
    assert "created_by" not in pushed
    assert (await live.next_of("giveaway"))["data"]["commitment"] == started["commitment"]

    await send(
        admin,
        room,
        [
            chat("想要福袋", user="amy"),
            chat("想 要 福 袋 !!", user="amy"),  # the same user again: still one entry
            chat("想要福袋", user="amy", event_id="amy-again"),
            chat("ＸＸ想要福袋ＸＸ", user="bo"),  # full-width around it: folded, it matches
            chat("想要福袋吗", user="cy"),
            chat("想要口红", user="dan"),  # not the keyword
            {"type": "follow", "user": {"id": "eve"}},  # not this giveaway's route
        ],
    )
    result = await drawn(admin, room, started["id"])  # no events are needed for the end
    published = await audit(admin, room, started["id"])
    assert published["entries"] == ["amy", "bo", "cy"]
    assert result["entrants"] == 3
    assert result["close_reason"] == "time_up"
    assert result["winner_ids"] == published["winner_ids"]
    assert len(result["winner_ids"]) == 2
    assert result["seed"] == published["seed"]
    assert reverify(published)
    assert not reverify(published | {"entries": published["entries"][:2]})
    assert result["drawn_at"] >= result["ends_at"]

    for channel in (console, live):
        message = await channel.next_of("giveaway", timeout=10)
        while message["data"]["state"] != "drawn":
            message = await channel.next_of("giveaway", timeout=10)
        assert message["data"]["winner_ids"] == published["winner_ids"]
        assert message["data"]["seed"] == published["seed"]
    recorded = await sql_value(
        stack.database_url,
        "SELECT entries_hash FROM giveaways WHERE id = :id",
        id=started["id"],
    )
    assert recorded == published["entries_hash"]
    await console.socket.close()
    await live.socket.close()


async def test_tasks_and_audiences(admin: httpx.AsyncClient, redis: Redis, room: str) -> None:
    # An earlier event says "rookie" is new; the entry itself does not repeat it.
    await send(admin, room, [{"type": "enter", "user": {"id": "rookie", "new": True}}])
    followers = await start(admin, room, entry="follow", keyword=None, audience="fans")
    sharers = await start(admin, room, entry="share", keyword=None, audience="new", winners=5)
    commenters = await start(admin, room, entry="comment", keyword=None, winners=5)

    async def rookie_known() -> bool:
        # The room's audiences, as the coupons group keeps them from its events.
        return bool(await redis.sismember(RoomKeys(room).viewers("new"), "rookie"))

    await wait_for(rookie_known)
    await send(
        admin,
        room,
        [
            {"type": "follow", "user": {"id": "f1"}},  # a follow makes a fan
            {"type": "follow", "user": {"id": "f1"}},
            {"type": "share", "user": {"id": "rookie"}},
            {"type": "share", "user": {"id": "newbie", "new": True}},
            {"type": "share", "user": {"id": "old-timer"}},  # not new: not eligible
            chat("随便说说", user="talker"),
            chat("再说一句", user="talker"),
            {"type": "like", "user": {"id": "liker"}, "count": 3},
        ],
    )
    for giveaway, entries in [
        (followers, ["f1"]),
        (sharers, ["newbie", "rookie"]),
        (commenters, ["talker"]),
    ]:
        await drawn(admin, room, giveaway["id"])
        published = await audit(admin, room, giveaway["id"])
        assert published["entries"] == entries, giveaway["entry"]
        assert reverify(published)
        assert sorted(published["winner_ids"]) == entries  # fewer entrants than winners


async def test_close_early_and_every_error(
    stack: Stack, admin: httpx.AsyncClient, room: str
) -> None:
    started = await start(admin, room, duration_s=600)
    base = f"/v1/rooms/{room}/giveaways"
    not_drawn = await admin.get(f"{base}/{started['id']}/audit")
    assert (not_drawn.status_code, not_drawn.json()["error"]) == (409, "not_drawn")
    await send(admin, room, [chat("想要福袋", user="early")])

    async def entered() -> bool:
        return bool((await admin.get(f"{base}/{started['id']}")).json()["entrants"] == 1)

    await wait_for(entered)
    closed = await admin.post(f"{base}/{started['id']}/close")
    assert closed.status_code == 200, closed.text
    assert closed.json()["close_reason"] == "closed"
    assert closed.json()["ends_at"] < started["ends_at"]
    again = await admin.post(f"{base}/{started['id']}/close")
    assert (again.status_code, again.json()["error"]) == (409, "giveaway_ended")
    result = await drawn(admin, room, started["id"])
    assert result["winner_ids"] == ["early"]
    await send(admin, room, [chat("想要福袋", user="late")])
    assert (await audit(admin, room, started["id"]))["entries"] == ["early"]

    for path in (f"{base}/gw-nope", f"{base}/gw-nope/audit"):
        missing = await admin.get(path)
        assert (missing.status_code, missing.json()["error"]) == (404, "giveaway_not_found")
    missing = await admin.post(f"{base}/gw-nope/close")
    assert (missing.status_code, missing.json()["error"]) == (404, "giveaway_not_found")
    assert (await admin.get(f"{base}/gw:bad")).status_code == 422
    bad = await admin.post(base, json=SPEC | {"keyword": None})
    assert (bad.status_code, bad.json()["error"]) == (422, "validation_error")
    assert "keyword" in bad.json()["detail"]
    assert (await admin.post(base, json=SPEC | {"winners": 1.5})).status_code == 422
    assert (await admin.post(base, json=SPEC | {"extra": 1})).status_code == 422
    not_json = await admin.post(
        base, content=b"{nope", headers={"content-type": "application/json"}
    )
    assert (not_json.status_code, not_json.json()["error"]) == (400, "invalid_json")
    unknown_room = await admin.post(f"/v1/rooms/{unique('nowhere')}/giveaways", json=SPEC)
    assert unknown_room.status_code == 404
    waiting = await create_room(admin, start=False)
    not_live = await admin.post(f"/v1/rooms/{waiting}/giveaways", json=SPEC)
    assert (not_live.status_code, not_live.json()["error"]) == (409, "room_not_live")
    # Nothing bad input did changed what was recorded.
    listed = (await admin.get(base)).json()
    assert [g["id"] for g in listed] == [started["id"]]
    assert (await audit(admin, room, started["id"]))["winner_ids"] == ["early"]


async def test_roles_and_rooms(stack: Stack, admin: httpx.AsyncClient, room: str) -> None:
    started = await start(admin, room, duration_s=600)
    base = f"/v1/rooms/{room}/giveaways"

    async def call(role: Role, rooms: list[str], method: str, path: str, body: Any = None) -> Any:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
            response = await client.request(
                method, path, json=body, headers=stack.headers(role, rooms)
            )
            assert "error" in response.json() or response.status_code < 300
            return response

    for role in (Role.ASSISTANT, Role.HOST, Role.PLAYER, Role.INGEST):
        refused = await call(role, [room], "POST", base, SPEC)
        assert (refused.status_code, refused.json()["error"]) == (403, "forbidden"), role
    for role in (Role.HOST, Role.PLAYER):
        closing = await call(role, [room], "POST", f"{base}/{started['id']}/close")
        assert closing.status_code == 403
    assert (await call(Role.INGEST, [room], "GET", base)).status_code == 403
    player_view = (await call(Role.PLAYER, [room], "GET", f"{base}/{started['id']}")).json()
    assert "created_by" not in player_view
    assert player_view["commitment"] == started["commitment"]
    host_view = (await call(Role.HOST, [room], "GET", base)).json()[0]
    assert host_view["created_by"] == "test-admin"
    other = [unique("elsewhere")]
    for method, path, body in [
        ("GET", base, None),
        ("POST", base, SPEC),
        ("GET", f"{base}/{started['id']}", None),
        ("GET", f"{base}/{started['id']}/audit", None),
        ("POST", f"{base}/{started['id']}/close", None),
    ]:
        assert (await call(Role.ADMIN, other, method, path, body)).status_code == 403, path
    # A giveaway of this room is not found through another room the caller may see.
    elsewhere = await create_room(admin)
    foreign = await admin.get(f"/v1/rooms/{elsewhere}/giveaways/{started['id']}")
    assert foreign.status_code == 404
    assert (
        await admin.post(f"/v1/rooms/{elsewhere}/giveaways/{started['id']}/close")
    ).status_code == 404
    assert (await admin.get(f"{base}/{started['id']}")).json()["state"] == "open"
    await admin.post(f"/v1/rooms/{elsewhere}/end")
    # Ending the room draws what is still open.
    await admin.post(f"/v1/rooms/{room}/end")
    ended = (await admin.get(f"{base}/{started['id']}")).json()
    assert (ended["state"], ended["close_reason"], ended["winner_ids"]) == (
        "drawn",
        "room_ended",
        [],
    )


async def test_rule_key_redelivery_and_crash_keep_the_winners(
    stack: Stack, admin: httpx.AsyncClient, resources: Resources
) -> None:
    room = await create_room(admin)
    console = await open_console(stack, room)
    service = GiveawayService(resources)
    spec = GiveawaySpec.model_validate(SPEC | {"duration_s": 600, "winners": 3})
    first = await service.start(room, spec, "rule:r1", key="firing-1")
    again = await service.start(room, spec, "rule:r1", key="firing-1")
    assert again.id == first.id
    assert again.commitment == first.commitment
    assert (await admin.get(f"/v1/rooms/{room}/giveaways")).json()[0]["key"] == "firing-1"

    now = first.created_at
    events = [RoomEvent(f"{now + 10}-0", n, chat("想要福袋", user=f"user-{n}")) for n in range(30)]
    # The same entries delivered twice (a redelivery after a crash) enter each user once.
    await service.record_entries(room, events)
    await service.record_entries(room, events)
    assert (await service.get(room, first.id)).entrants == 30

    closed = await service.close(room, first.id)
    winners = (await drawn(admin, room, first.id))["winner_ids"]
    assert closed.entrants == 30
    assert len(winners) == 3
    # A worker that recorded the draw and died before announcing it: the next settle
    # announces the recorded draw, never a new one.
    await resources.redis.sadd(RoomKeys(room).giveaways_open, first.id)
    await service.settle(room, first.id, closed.ends_at + 1, force=True)
    await service.settle(room, first.id, closed.ends_at + 1, force=True)
    published = await audit(admin, room, first.id)
    assert published["winner_ids"] == winners
    assert reverify(published)
    messages = []
    while True:
        try:
            messages.append((await console.next_of("giveaway", timeout=2))["data"])
        except TimeoutError:
            break
    assert [m["state"] for m in messages if m["state"] != "open"] == ["drawn"], messages
    assert sum(1 for m in messages if m["state"] == "open" and m["entrants"] == 0) == 1
    await console.socket.close()
    await admin.post(f"/v1/rooms/{room}/end")


async def test_a_giveaway_redis_lost_is_put_back_and_drawn(
    admin: httpx.AsyncClient, resources: Resources, room: str
) -> None:
    started = await start(admin, room, duration_s=6)
    await send(admin, room, [chat("想要福袋", user="kept")])

    async def entered() -> bool:
        body = (await admin.get(f"/v1/rooms/{room}/giveaways/{started['id']}")).json()
        return bool(body["entrants"] == 1)

    await wait_for(entered)
    keys = RoomKeys(room)
    # Redis forgets that the giveaway is open (its entrants survive, as from the AOF).
    await resources.redis.delete(keys.giveaways_open, keys.giveaway(started["id"]))
    await GiveawayService(resources).recover()
    assert await resources.redis.sismember(keys.giveaways_open, started["id"])
    await drawn(admin, room, started["id"])
    published = await audit(admin, room, started["id"])
    assert published["entries"] == ["kept"]
    assert reverify(published)
