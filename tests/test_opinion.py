"""Opinion on a real stack: annotated chat, burst alerts and their lifecycle, watchlists,
hot questions."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from livectl.auth.tokens import Role
from livectl.kit.clock import now_ms
from livectl.opinion import bursts
from livectl.opinion.windows import Observed, Windows
from livectl.opinion.worker import OpinionTick
from livectl.resources import Resources
from tests.conftest import Stack, chat, create_room, open_console, unique, wait_for
from tests.test_bursts import COMPLAINTS, NEGATED_KEYWORDS, ORDINARY, ORDINARY_NEGATIVE


async def send(stack: Stack, room: str, events: list[dict[str, Any]]) -> None:
    async with httpx.AsyncClient(
        base_url=stack.base_url, headers=stack.headers(Role.INGEST, [room]), timeout=10
    ) as client:
        answer = await client.post(f"/v1/rooms/{room}/events", json=events)
        assert answer.status_code == 202, answer.text
        assert answer.json()["accepted"] == len(events)


async def complaint_burst(stack: Stack, room: str) -> float:
    """20 distinct complaints from 8 users over about 5 s; returns when the last was accepted."""
    for n, text in enumerate(COMPLAINTS[:20]):
        await send(stack, room, [chat(text, user=f"angry-{n % 8}")])
        await asyncio.sleep(0.25)
    return time.monotonic()


async def alerts_of(admin: httpx.AsyncClient, room: str, status: str = "all") -> list[Any]:
    answer = await admin.get(f"/v1/rooms/{room}/alerts", params={"status": status})
    assert answer.status_code == 200
    alerts: list[Any] = answer.json()
    return alerts


async def test_chat_carries_sentiment_and_tags(stack: Stack, room: str) -> None:
    console = await open_console(stack, room)
    await console.next_of("snapshot")
    await send(stack, room, [chat("假 货！"), chat("不是假货吧?"), chat("主播好美👍")])
    fake, asking, praise = await console.collect(3)
    assert fake["data"]["tags"] == ["counterfeit"]
    assert fake["data"]["sentiment"] <= -0.5
    assert asking["data"]["tags"] == []
    assert asking["data"]["sentiment"] > -0.25
    assert praise["data"]["sentiment"] >= 0.5
    assert [m["data"]["hidden"] for m in (fake, asking, praise)] == [False, False, False]
    await console.socket.close()


@pytest.mark.slow
async def test_a_complaint_burst_raises_one_alert_within_five_seconds(
    stack: Stack, room: str, admin: httpx.AsyncClient
) -> None:
    console = await open_console(stack, room)
    await console.next_of("snapshot")
    # Some ordinary chat first, so the burst stands out of a live room, not an empty one.
    rng = random.Random(1)
    await send(stack, room, [chat(rng.choice(ORDINARY), user=f"v{n}") for n in range(100)])
    last_sent = await complaint_burst(stack, room)
    alert = await console.next_of("alert", timeout=10)
    arrived = time.monotonic()
    assert arrived - last_sent <= 5.0, f"alert {arrived - last_sent:.1f} s after the burst"
    data = alert["data"]
    assert data["kind"] == "complaint"
    assert data["level"] in ("warning", "critical")
    assert data["status"] == "open"
    # It may come before the burst ends: as soon as the floors are passed.
    assert data["figures"]["users"] >= bursts.CATEGORY.min_users
    assert data["figures"]["texts"] >= bursts.CATEGORY.min_texts
    assert len(data["samples"]) >= 3
    assert {s["text"] for s in data["samples"]} <= set(COMPLAINTS)
    # Once: the burst goes on being visible for a while, but no second alert comes.
    await asyncio.sleep(4)
    stored = await alerts_of(admin, room)
    assert [a["id"] for a in stored] == [data["id"]]
    await console.socket.close()


async def test_a_burst_alert_is_resolved_by_the_system_once_the_room_calms_down(
    stack: Stack, room: str, admin: httpx.AsyncClient, resources: Resources
) -> None:
    console = await open_console(stack, room)
    await console.next_of("snapshot")
    await complaint_burst(stack, room)
    raised = (await console.next_of("alert", timeout=10))["data"]
    # The room's tick well after the burst, with nothing hot since: due for resolving.
    await OpinionTick(resources).tick(room, now_ms() + bursts.QUIET_MS + 60_000)
    update = await console.next_of("alert", timeout=10)
    assert (update["data"]["id"], update["data"]["status"]) == (raised["id"], "resolved")
    [stored] = await alerts_of(admin, room)
    assert (stored["status"], stored["resolved_by"]) == ("resolved", "system")
    await console.socket.close()


@pytest.mark.slow
async def test_an_ordinary_busy_room_raises_no_alert(
    stack: Stack, room: str, admin: httpx.AsyncClient
) -> None:
    rng = random.Random(2)
    pools = [ORDINARY] * 6 + [ORDINARY_NEGATIVE] * 3 + [NEGATED_KEYWORDS]
    for _ in range(30):  # 30 s at 20 messages/s
        await send(
            stack,
            room,
            [chat(rng.choice(rng.choice(pools)), user=f"v{rng.randrange(500)}") for _ in range(20)],
        )
        await asyncio.sleep(1)
    await asyncio.sleep(2)
    assert await alerts_of(admin, room) == []


@pytest.mark.slow
async def test_alerts_are_acked_then_resolved_and_fill_the_snapshot(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    room = await create_room(admin)
    await complaint_burst(stack, room)

    async def raised() -> bool:
        return len(await alerts_of(admin, room, "open")) == 1

    await wait_for(raised, timeout=15)
    (alert,) = await alerts_of(admin, room, "open")
    console = await open_console(stack, room)
    snapshot = await console.next_of("snapshot")
    await console.socket.close()
    assert [a["id"] for a in snapshot["data"]["alerts"]] == [alert["id"]]

    url = f"/v1/rooms/{room}/alerts/{alert['id']}"
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
        host = stack.headers(Role.HOST, [room])
        assistant = stack.headers(Role.ASSISTANT, [room])
        elsewhere = stack.headers(Role.ASSISTANT, ["another-room"])
        assert (await client.post(f"{url}/ack", headers=host)).status_code == 403
        assert (await client.post(f"{url}/ack", headers=elsewhere)).status_code == 403
        assert (await client.post(f"{url}/ack")).status_code == 401
        missing = await client.post(f"/v1/rooms/{room}/alerts/al_nope/ack", headers=assistant)
        assert (missing.status_code, missing.json()["error"]) == (404, "alert_not_found")
        hostile = await client.post(f"/v1/rooms/{room}/alerts/..%2F..%2Fx/ack", headers=assistant)
        assert 400 <= hostile.status_code < 500

        acked = await client.post(f"{url}/ack", headers=assistant)
        assert acked.status_code == 200
        assert (acked.json()["status"], acked.json()["acked_by"]) == ("acked", "test-assistant")
        again = await client.post(f"{url}/ack", headers=assistant)
        assert again.json()["acked_at"] == acked.json()["acked_at"]
        assert (await client.get(f"/v1/rooms/{room}/alerts", headers=host)).json()[0][
            "status"
        ] == "acked"
        resolved = await client.post(f"{url}/resolve", headers=assistant)
        assert resolved.json()["status"] == "resolved"
        late_ack = await client.post(f"{url}/ack", headers=assistant)
        assert (late_ack.status_code, late_ack.json()["error"]) == (409, "alert_resolved")
        assert (await client.get(f"/v1/rooms/{room}/alerts", headers=host)).json() == []
        bad_filter = await client.get(f"/v1/rooms/{room}/alerts?status=bogus", headers=host)
        assert (bad_filter.status_code, bad_filter.json()["error"]) == (422, "validation_error")
        unknown = await client.get(
            "/v1/rooms/no-such-room/alerts", headers=stack.headers(Role.HOST)
        )
        assert unknown.status_code == 404


async def test_a_room_watchlist_replaces_the_default(
    stack: Stack, room: str, admin: httpx.AsyncClient
) -> None:
    default = await admin.get(f"/v1/rooms/{room}/watchlist")
    assert default.json()["default"] is True
    assert "假货" in default.json()["categories"]["counterfeit"]
    put = await admin.put(
        f"/v1/rooms/{room}/watchlist", json={"categories": {"color": ["色 差", "掉色"]}}
    )
    assert put.status_code == 200
    assert put.json() == {"categories": {"color": ["色 差", "掉色"]}, "default": False}
    console = await open_console(stack, room)
    await console.next_of("snapshot")
    await send(stack, room, [chat("色差好大"), chat("假货")])
    colour, fake = await console.collect(2)
    assert colour["data"]["tags"] == ["color"]
    assert fake["data"]["tags"] == []
    await console.socket.close()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"categories": {"Bad Name": ["x"]}}, 422),
        ({"categories": {"refund": ["!!!"]}}, 422),
        ({"categories": {"refund": ["x" * 33]}}, 422),
        ({"categories": {"refund": ["退款"] * 201}}, 422),
        ({"categories": {f"c{n}": ["x"] for n in range(21)}}, 422),
        ({"categories": {"refund": "退款"}}, 422),
        ({"categories": {"refund": ["退款"]}, "extra": 1}, 422),
        ([], 422),
    ],
)
async def test_malformed_watchlists_are_refused(
    room: str, admin: httpx.AsyncClient, body: Any, status: int
) -> None:
    answer = await admin.put(f"/v1/rooms/{room}/watchlist", json=body)
    assert answer.status_code == status
    assert set(answer.json()) == {"error", "detail"}
    assert (await admin.get(f"/v1/rooms/{room}/watchlist")).json()["default"] is True


async def test_watchlist_needs_a_controller_of_the_room(stack: Stack, room: str) -> None:
    body = {"categories": {"refund": ["退款"]}}
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
        url = f"/v1/rooms/{room}/watchlist"
        assert (await client.put(url, json=body)).status_code == 401
        bad_token = {"Authorization": "Bearer not-a-token"}
        assert (await client.put(url, json=body, headers=bad_token)).status_code == 401
        for headers in (
            stack.headers(Role.ASSISTANT, [room]),
            stack.headers(Role.CONTROLLER, ["elsewhere"]),
        ):
            refused = await client.put(url, json=body, headers=headers)
            assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
        not_json = await client.put(
            url,
            content=b"{nope",
            headers={**stack.headers(Role.CONTROLLER, [room]), "Content-Type": "application/json"},
        )
        assert not_json.status_code == 400


async def test_hot_questions_reach_the_host_grouped(stack: Stack, room: str) -> None:
    console = await open_console(stack, room)
    await console.next_of("snapshot")
    asked = ["这个多少钱", "多少钱？", "价格多少", "160斤穿什么码", "什么时候发货", "太贵了"]
    await send(stack, room, [chat(text, user=f"q{n}") for n, text in enumerate(asked)])

    async def grouped() -> dict[str, Any] | None:
        message = await console.next_of("questions", timeout=10)
        counts = {item["intent"]: item["count"] for item in message["data"]["items"]}
        return message if counts.get("price") == 3 else None

    message = None
    while message is None:
        message = await grouped()
    items = message["data"]["items"]
    assert items[0]["intent"] == "price"
    assert items[0]["label"] == "价格"
    assert {"size", "shipping"} <= {item["intent"] for item in items}
    assert "这个多少钱" in items[0]["samples"]
    await console.socket.close()
    # A host view that opens now sees them at once, in its snapshot.
    late = await open_console(stack, room)
    snapshot = (await late.next_of("snapshot"))["data"]
    assert snapshot["questions"] == message["data"]
    await late.socket.close()


async def test_a_redelivered_batch_changes_no_figure(redis: Redis) -> None:
    room = unique("redeliver")
    now = 1_800_000_000_000
    observed = [
        Observed(
            at_ms=now,
            key=f"e{n}",
            user=f"u{n}",
            text=text,
            words=text,
            signals=("complaint",),
            intents=("price",) if n == 0 else (),
        )
        for n, text in enumerate(COMPLAINTS[:8])
    ]
    windows = Windows(redis)
    await windows.record(room, observed)
    first = (
        await windows.figures(room, now, ["complaint"]),
        await windows.hot_questions(room, now),
    )
    await windows.record(room, observed)  # the same entries, delivered again
    second = (
        await windows.figures(room, now, ["complaint"]),
        await windows.hot_questions(room, now),
    )
    assert first == second
    figures, samples = first[0]["complaint"]
    assert (figures.total, figures.texts, figures.users) == (8, 8, 8)
    assert len(samples) == len({s["text"] for s in samples}) == 5
    assert first[1] == [("price", 1, [COMPLAINTS[0]])]
