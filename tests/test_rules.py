"""Rules against the running stack: the endpoints, firings live, exactly once, and replay."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from livectl.auth.tokens import Role
from livectl.bus.consumer import Entry
from livectl.bus.keys import RoomKeys
from livectl.kit import codec
from livectl.kit.clock import now_ms
from livectl.resources import Resources
from livectl.rules.replay import Replayer
from livectl.rules.rules import Firing
from livectl.rules.service import FiringService, RuleService
from livectl.rules.worker import GROUP as RULES
from livectl.rules.worker import RulesTick, RulesWorker, room_clock
from tests.conftest import Stack, chat, create_room, open_console, sql_value, unique, wait_for
from tests.test_bursts import ORDINARY_NEGATIVE
from tests.test_coupons import DROP
from tests.test_opinion import send
from tests.test_stats import group_caught_up

ANNOUNCE = [{"kind": "announce", "text": "link is up"}]
GIVEAWAY = {"title": "福袋", "prize": "口红", "winners": 1, "entry": "comment", "duration_s": 60}


def rule(rule_id: str, trigger: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"id": rule_id, "trigger": trigger, "actions": ANNOUNCE} | fields


async def firings(admin: httpx.AsyncClient, room: str) -> list[dict[str, Any]]:
    answer = await admin.get(f"/v1/rooms/{room}/rules/firings")
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found


async def test_rules_are_versioned_with_who_set_them(
    stack: Stack, admin: httpx.AsyncClient, room: str
) -> None:
    url = f"/v1/rooms/{room}/rules"
    assert (await admin.get(url)).json()["version"] == 0
    body = {"rules": [rule("hello", {"kind": "chat_keyword", "keywords": ["链接"]})]}
    first = await admin.put(url, json=body)
    assert first.status_code == 200, first.text
    assert (first.json()["version"], first.json()["set_by"]) == (1, "test-admin")
    second = await admin.put(url, json=body | {"dry_run": True})
    assert second.json()["version"] == 2
    current = (await admin.get(url)).json()
    assert (current["version"], current["dry_run"], current["rules"][0]["id"]) == (2, True, "hello")
    stored = await sql_value(
        stack.database_url, "SELECT count(*) FROM rule_sets WHERE room_id = :room", room=room
    )
    assert stored == 2


@pytest.mark.parametrize(
    ("rules", "named"),
    [
        (
            [rule("r-x", {"kind": "likes", "above": 10}, colour="red")],
            "rule 'r-x' (rules[0]) colour",
        ),
        (
            [
                rule("ok", {"kind": "likes", "above": 10}),
                rule("late", {"kind": "likes", "above": 5}, active={"from_s": 50, "until_s": 10}),
            ],
            "rule 'late' (rules[1]) active",
        ),
        (
            [rule("rate", {"kind": "comments_rate", "window_s": 60, "drop_pct": 150})],
            "rule 'rate' (rules[0]) trigger.comments_rate.drop_pct",
        ),
        (
            [
                {
                    "id": "coupon",
                    "trigger": {"kind": "likes", "above": 10},
                    "actions": [{"kind": "drop_coupon", "template_id": "tpl-missing"}],
                }
            ],
            "rule 'coupon' (rules[0]) actions[0].template_id: no coupon template 'tpl-missing'",
        ),
        (
            [rule("pin", {"kind": "order", "product_id": "sku-404"})],
            "rule 'pin' (rules[0]) trigger.product_id: no product 'sku-404'",
        ),
        (
            [
                rule("twin", {"kind": "likes", "above": 1}),
                rule("twin", {"kind": "likes", "above": 2}),
            ],
            "used twice",
        ),
    ],
)
async def test_bad_rules_are_refused_with_the_rule_and_field_and_change_nothing(
    admin: httpx.AsyncClient, room: str, rules: list[dict[str, Any]], named: str
) -> None:
    url = f"/v1/rooms/{room}/rules"
    answer = await admin.put(url, json={"rules": rules})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "invalid_rules"
    assert named in answer.json()["detail"]
    assert (await admin.get(url)).json()["version"] == 0


async def test_who_may_read_and_set_rules(
    stack: Stack, admin: httpx.AsyncClient, room: str
) -> None:
    other = await create_room(admin)
    url = f"/v1/rooms/{room}/rules"
    body = {"rules": [rule("hello", {"kind": "viewer", "event": "follow"})]}

    async def call(
        role: Role, rooms: list[str], method: str, path: str, **kw: Any
    ) -> httpx.Response:
        async with httpx.AsyncClient(
            base_url=stack.base_url, headers=stack.headers(role, rooms)
        ) as c:
            return await c.request(method, path, **kw)

    assert (await call(Role.HOST, [room], "GET", url)).status_code == 200
    assert (await call(Role.HOST, [room], "GET", f"{url}/firings")).status_code == 200
    assert (await call(Role.ASSISTANT, [room], "PUT", url, json=body)).status_code == 403
    assert (await call(Role.PLAYER, [room], "GET", url)).status_code == 403
    assert (await call(Role.CONTROLLER, [other], "PUT", url, json=body)).status_code == 403
    assert (await call(Role.CONTROLLER, [room], "PUT", url, json=body)).status_code == 200
    assert (await admin.get(f"/v1/rooms/{unique('nope')}/rules")).status_code == 404
    assert (await admin.put(f"/v1/rooms/{unique('nope')}/rules", json=body)).status_code == 404
    broken = await admin.put(
        url, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert (broken.status_code, broken.json()["error"]) == (400, "invalid_json")
    listed = await admin.put(url, json=[1, 2])
    assert (listed.status_code, listed.json()["error"]) == (422, "invalid_rules")
    assert (await admin.get(url)).json()["version"] == 1


async def test_a_keyword_rule_fires_once_per_cool_down_and_reaches_the_consoles(
    stack: Stack, admin: httpx.AsyncClient, room: str
) -> None:
    await admin.put(
        f"/v1/rooms/{room}/rules",
        json={
            "rules": [
                rule("link", {"kind": "chat_keyword", "keywords": ["链接"]}, cooldown_s=600),
                rule("follow", {"kind": "viewer", "event": "follow"}, max_firings=2, dry_run=True),
            ]
        },
    )
    console = await open_console(stack, room)
    live = await open_console(stack, room, role=Role.PLAYER, channel="live")
    await console.next_of("snapshot")
    await send(stack, room, [chat("求链接", user="a"), chat("好看"), chat("链接呢", user="b")])
    fired = await console.next_of("rule", timeout=10)
    assert fired["data"]["rule_id"] == "link"
    assert "链接" in fired["data"]["reason"]
    assert fired["data"]["dry_run"] is False
    assert (await live.next_of("announcement"))["data"]["text"] == "link is up"
    await live.socket.close()
    await console.socket.close()
    follows = [{"type": "follow", "user": {"id": f"f{n}"}} for n in range(4)]
    await send(stack, room, follows)

    async def settled() -> bool:
        return len(await firings(admin, room)) == 3

    await wait_for(settled)
    await asyncio.sleep(1.0)  # nothing more comes
    recorded = await firings(admin, room)
    assert sorted(f["rule_id"] for f in recorded) == ["follow", "follow", "link"]
    dry = [f for f in recorded if f["rule_id"] == "follow"]
    assert all(f["dry_run"] and f["status"] == "dry_run" and f["results"] == [] for f in dry)
    link = next(f for f in recorded if f["rule_id"] == "link")
    assert (link["status"], link["results"]) == ("done", [{"kind": "announce"}])


async def test_a_firing_claimed_by_a_worker_that_died_is_finished_once(
    admin: httpx.AsyncClient, room: str, resources: Resources, redis: Redis
) -> None:
    template = (await admin.post(f"/v1/rooms/{room}/coupon-templates", json=DROP)).json()["id"]
    await admin.put(
        f"/v1/rooms/{room}/rules",
        json={
            "rules": [
                {
                    "id": "drop",
                    "trigger": {"kind": "likes", "above": 100},
                    "actions": [
                        {"kind": "drop_coupon", "template_id": template},
                        {"kind": "start_giveaway", "giveaway": GIVEAWAY},
                        {"kind": "alert", "title": "coupon dropped"},
                    ],
                }
            ]
        },
    )
    in_force = await RuleService(resources).in_force(room)
    clock = await room_clock(resources, room)
    assert clock is not None
    firing = Firing(in_force.rules.rules[0], clock.started_ms + 5, "likes-test", "likes passed 100")

    class DiesAfterClaiming(FiringService):
        async def carry_out(self, room: str, record: dict[str, Any]) -> None:
            raise SystemExit("worker killed between claim and actions")

    with pytest.raises(SystemExit):
        await DiesAfterClaiming(resources).claim(room, in_force, [firing], clock.started_ms)
    assert await redis.hlen(RoomKeys(room).rules_pending) == 1
    # The same firing again (a redelivered event) is not claimed twice.
    assert await FiringService(resources).claim(room, in_force, [firing], clock.started_ms) == []

    # The room's tick finishes it once it has waited long enough for its own worker.
    async def finished() -> bool:
        found = await firings(admin, room)
        return bool(found) and found[0]["status"] == "done"

    await wait_for(finished, timeout=15)
    # Carried out again, twice at once (a slow worker and the recovery): nothing repeats.
    record = {
        "id": found_id(await firings(admin, room)),
        "room_id": room,
        "rule_id": "drop",
        "version": in_force.version,
        "at": firing.at_ms,
        "offset_ms": 5,
        "reason": firing.reason,
        "actions": [a.model_dump(mode="json") for a in firing.rule.actions],
        "dry_run": False,
    }
    service = FiringService(resources)
    await asyncio.gather(service.carry_out(room, record), service.carry_out(room, record))
    drops = (await admin.get(f"/v1/rooms/{room}/coupons")).json()
    assert len(drops) == 1
    alerts = (await admin.get(f"/v1/rooms/{room}/alerts")).json()
    assert [a["title"] for a in alerts] == ["coupon dropped"]
    (recorded,) = await firings(admin, room)
    assert [r["kind"] for r in recorded["results"]] == ["drop_coupon", "start_giveaway", "alert"]
    giveaways = (await admin.get(f"/v1/rooms/{room}/giveaways")).json()
    assert [g["id"] for g in giveaways] == [recorded["results"][1]["giveaway_id"]]
    assert recorded["results"][0]["drop_id"] == drops[0]["id"]
    assert await redis.hlen(RoomKeys(room).rules_pending) == 0


def found_id(found: list[dict[str, Any]]) -> str:
    (only,) = found
    identifier: str = only["id"]
    return identifier


async def test_a_replay_reproduces_the_firings_of_the_live(
    stack: Stack, admin: httpx.AsyncClient, resources: Resources, redis: Redis, tmp_path: Path
) -> None:
    room = await create_room(admin)
    rules = {
        "rules": [
            rule("link", {"kind": "chat_keyword", "keywords": ["链接"]}, cooldown_s=3),
            rule("every-5s", {"kind": "schedule", "every_s": 5}),
            rule("likes", {"kind": "likes", "above": 50}),
            rule("busy", {"kind": "comments_rate", "window_s": 5, "above_per_minute": 60}),
        ]
    }
    assert (await admin.put(f"/v1/rooms/{room}/rules", json=rules)).status_code == 200
    for second in range(9):
        events: list[dict[str, Any]] = [chat("求链接" if second % 2 else "好看", user=f"u{second}")]
        events += [{"type": "like", "user": {"id": "fan"}, "count": 10}]
        if second == 4:
            events += [chat(f"热闹{n}", user=f"v{n}") for n in range(8)]
        await send(stack, room, events)
        await asyncio.sleep(1.0)
    await asyncio.sleep(3.0)  # the clock's grace, so the live's last steps are taken
    assert (await admin.post(f"/v1/rooms/{room}/end")).status_code == 200

    async def settled() -> bool:
        """Every event archived, seen by the rules, and each firing they claimed carried out."""
        count = await sql_value(
            stack.database_url, "SELECT count(*) FROM events WHERE room_id = :room", room=room
        )
        return (
            count == 26
            and await group_caught_up(redis, room, RULES)
            and not await redis.hlen(RoomKeys(room).rules_pending)
        )

    await wait_for(settled)
    live = sorted(await firings(admin, room), key=lambda f: (f["at"], f["rule_id"]))
    kinds = {f["rule_id"] for f in live}
    assert kinds == {"link", "every-5s", "likes", "busy"}, live

    replayer = Replayer(resources)
    recording = await replayer.recording(room)
    scratch, replayed = await asyncio.wait_for(
        replayer.replay(recording, await replayer.rules_of(room, None), speed=4), 30
    )
    assert scratch != room
    assert [f["rule_id"] for f in live] == [f.rule_id for f in replayed], (live, replayed)
    for recorded, again in zip(live, replayed, strict=True):
        assert again.dry_run
        assert abs(recorded["offset_ms"] - (again.offset_ms or 0)) <= 250, (recorded, again)

    # The command prints the same firings, in live time.
    printed = await replay_command(stack, room, "--speed", "8")
    assert printed.returncode == 0, printed.stderr
    lines = printed.stdout.decode().splitlines()
    assert f"{len(live)} firings" in lines[1], (printed.stdout.decode(), live)
    assert [line.split()[2] for line in lines[2:]] == [f["rule_id"] for f in live], (lines, live)
    bad = tmp_path / "rules.json"
    bad.write_text('{"rules": [{"id": "x", "trigger": {"kind": "likes"}, "actions": []}]}')
    refused = await replay_command(stack, room, "--rules", str(bad))
    assert refused.returncode == 1
    assert b"invalid_rules: rule 'x' (rules[0])" in refused.stderr
    missing = await replay_command(stack, unique("nope"), "--speed", "8")
    assert missing.returncode == 1
    assert b"room_not_found" in missing.stderr


async def test_a_tick_of_an_ended_live_takes_no_more_steps(
    admin: httpx.AsyncClient, resources: Resources, redis: Redis
) -> None:
    # A tick of the worker may be under way when the live ends (its time taken before the
    # end, its rules handler run after): the live's clock and firings must stay as they were
    # at the end, or a replay read then reproduces a live that later grew a firing.
    room = await create_room(admin)
    every_5s = {"rules": [rule("every-5s", {"kind": "schedule", "every_s": 5})]}
    assert (await admin.put(f"/v1/rooms/{room}/rules", json=every_5s)).status_code == 200
    assert (await admin.post(f"/v1/rooms/{room}/end")).status_code == 200
    clock = RoomKeys(room).rules_clock
    stepped, before = await redis.hget(clock, "until"), await firings(admin, room)
    await RulesTick(resources).tick(room, now_ms() + 10_000)
    assert await redis.hget(clock, "until") == stepped
    assert await firings(admin, room) == before


async def replay_command(stack: Stack, *args: str) -> subprocess.CompletedProcess[bytes]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "livectl", "replay", *args],
        env=stack.env,
        capture_output=True,
        timeout=60,
        check=False,
    )


async def test_shop_state_rules_fire_once_per_product_and_run_their_actions(
    admin: httpx.AsyncClient, room: str
) -> None:
    await admin.put(
        f"/v1/rooms/{room}/rules",
        json={
            "rules": [
                {
                    "id": "restock",
                    "trigger": {"kind": "sold_out", "product_id": "sku-1"},
                    "actions": [
                        {"kind": "pin_product", "product_id": "sku-2"},
                        {"kind": "alert", "level": "info", "title": "口红卖完了"},
                    ],
                },
                rule("any-sold-out", {"kind": "sold_out"}),
            ]
        },
    )
    assert (await admin.post(f"/v1/rooms/{room}/products/sku-1/sold-out")).status_code == 200

    async def fired() -> bool:
        found = await firings(admin, room)
        return len(found) == 2 and all(f["status"] == "done" for f in found)

    await wait_for(fired)
    await asyncio.sleep(2.5)  # more ticks see it sold out: nothing fires again
    found = await firings(admin, room)
    assert sorted(f["rule_id"] for f in found) == ["any-sold-out", "restock"]
    restock = next(f for f in found if f["rule_id"] == "restock")
    assert restock["reason"] == "product sku-1 sold out"
    assert (await admin.get(f"/v1/rooms/{room}")).json()["pinned_product_id"] == "sku-2"
    assert [a["title"] for a in (await admin.get(f"/v1/rooms/{room}/alerts")).json()] == [
        "口红卖完了"
    ]


async def test_a_redelivered_entry_counts_once_and_fires_nothing_twice(
    admin: httpx.AsyncClient, room: str, resources: Resources, redis: Redis
) -> None:
    await admin.put(
        f"/v1/rooms/{room}/rules",
        json={
            "rules": [
                rule("likes", {"kind": "likes", "above": 100}),
                rule("order", {"kind": "order", "product_id": "sku-1"}),
            ]
        },
    )
    likes = [{"type": "like", "user": {"id": "fan"}, "count": 60} for _ in range(2)]
    order = {
        "type": "order",
        "user": {"id": "buyer"},
        "product_id": "sku-1",
        "order": {"id": "o1", "quantity": 1, "amount": 9900},
    }
    # Handed to the worker directly (not through the stream the session's worker reads),
    # twice, as a reclaimed entry would be.
    entry = Entry(f"{now_ms()}-0", {b"e": codec.dumps([*likes, order])})
    worker = RulesWorker(resources)
    await worker.handle(room, [entry])
    await worker.handle(room, [entry])
    await RulesWorker(resources).handle(room, [entry])  # and by another worker process
    assert await redis.hget(RoomKeys(room).rules_figures, "likes") == b"120"
    recorded = await firings(admin, room)
    assert sorted(f["rule_id"] for f in recorded) == ["likes", "order"]
    assert (
        next(f for f in recorded if f["rule_id"] == "likes")["reason"] == "likes passed 100 (120)"
    )


async def test_a_negative_share_window_fires_from_the_chat_itself(
    stack: Stack, admin: httpx.AsyncClient, room: str
) -> None:
    trigger = {"kind": "negative_share", "window_s": 5, "above": 0.5, "min_comments": 4}
    await admin.put(f"/v1/rooms/{room}/rules", json={"rules": [rule("angry", trigger)]})
    await send(stack, room, [chat(text, user=f"n{i}") for i, text in enumerate(ORDINARY_NEGATIVE)])

    async def fired() -> bool:
        return bool(await firings(admin, room))

    await wait_for(fired, timeout=15)
    (angry,) = await firings(admin, room)
    # (The opinion analyser judges which comments are negative: most of these, not all.)
    assert angry["reason"].startswith("negative share "), angry
    assert angry["reason"].endswith(" of 7 comments over 5 s"), angry
    assert angry["offset_ms"] % 5000 == 0  # on a step of the room clock
