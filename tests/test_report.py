"""The post-live report and the room list: what a live left behind, for the people allowed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from livectl.auth.tokens import Role
from livectl.opinion.service import AlertService
from livectl.resources import Resources
from tests.conftest import PRODUCTS, Stack, chat, create_room, unique, wait_for
from tests.test_coupons import DROP


def order(user: str, order_id: str, amount: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "order",
        "user": {"id": user},
        "product_id": "sku-1",
        "order": {"id": order_id, "quantity": 1, "amount": amount} | extra,
    }


async def test_report_traces_the_live(
    stack: Stack, admin: httpx.AsyncClient, resources: Resources
) -> None:
    room = await create_room(admin)
    events = f"/v1/rooms/{room}/events"
    coupon = await admin.post(
        f"/v1/rooms/{room}/coupons", json=DROP | {"min_spend": 0, "quantity": 10}
    )
    assert coupon.status_code == 201, coupon.text
    claim = await admin.post(
        f"/v1/rooms/{room}/coupons/{coupon.json()['id']}/claims", json={"user_id": "buyer"}
    )
    code = claim.json()["code"]
    asked = [chat("口红多少钱", user=f"q{i}", event_id=f"ask-{i}") for i in range(6)]
    batch = [
        *asked,
        chat("什么时候发货", user="q9"),
        chat("刷屏广告", user="spam", event_id="spam-1"),
        {"type": "click", "product_id": "sku-1", "user": {"id": "buyer"}},
        {"type": "cart", "product_id": "sku-1", "user": {"id": "buyer"}},
        order("buyer", "o1", 9900, coupon_code=code),
        order("other", "o2", 9900),
    ]
    accepted = await admin.post(events, json=batch)
    assert accepted.json()["accepted"] == len(batch), accepted.text
    await admin.post(f"/v1/rooms/{room}/messages/spam-1/hide")
    await admin.post(f"/v1/rooms/{room}/mutes", json={"user_id": "spam", "seconds": 60})
    await admin.post(f"/v1/rooms/{room}/mutes", json={"user_id": "spam", "seconds": 120})
    for title in ("first", "second"):
        await AlertService(resources).raise_alert(
            room, kind="test", level="warning", title=title, samples=[], figures={}
        )

    async def counted() -> bool:
        report = (await admin.get(f"/v1/rooms/{room}/report")).json()
        return bool(
            report["totals"]["orders"] == 2
            and report["coupons"][0]["redeemed"] == 1
            and report["questions"]
        )

    await wait_for(counted, timeout=20)
    assert (await admin.post(f"/v1/rooms/{room}/end")).status_code == 200
    reply = await admin.get(f"/v1/rooms/{room}/report")
    assert reply.status_code == 200, reply.text
    report = reply.json()

    assert report["room"]["status"] == "ended"
    totals = report["totals"]
    assert (totals["comments"], totals["orders"], totals["gmv"]) == (8, 2, 19800)
    assert report["minutes"], "the end rolls up the last minute"
    assert report["minutes"][-1]["stats"] == totals, "an ended live's totals are its record"
    lipstick = next(p for p in report["products"] if p["product_id"] == "sku-1")
    assert lipstick["name"] == "豆沙色口红"
    assert (lipstick["clicks"], lipstick["carts"], lipstick["orders"]) == (1, 1, 2)
    assert lipstick["mentions"] == 6
    [drop] = report["coupons"]
    assert (drop["claimed"], drop["redeemed"], drop["gmv"], drop["cost"]) == (1, 1, 9900, 1000)
    assert drop["state"] == "ended"
    assert drop["end_reason"] == "room_ended"
    assert drop["started_at"] <= drop["ended_at"]
    assert [a["title"] for a in report["alerts"]] == ["first", "second"]
    questions = {q["intent"]: q for q in report["questions"]}
    assert questions["price"]["count"] == 6
    assert questions["price"]["label"] == "价格"
    assert "口红多少钱" in questions["price"]["samples"]
    assert questions["shipping"]["count"] == 1
    assert report["questions"][0]["intent"] == "price", "most asked first"
    assert report["moderation"]["muted_users"] == 1
    assert report["moderation"]["by_reason"]["manual"] == 1
    assert report["moderation"]["hidden"] == sum(report["moderation"]["by_reason"].values())


async def test_report_of_a_room_not_yet_live(admin: httpx.AsyncClient) -> None:
    room = await create_room(admin, start=False)
    report = (await admin.get(f"/v1/rooms/{room}/report")).json()
    assert report["room"]["status"] == "created"
    assert report["minutes"] == report["coupons"] == report["alerts"] == []
    assert report["totals"]["comments"] == 0
    assert report["moderation"] == {"hidden": 0, "muted_users": 0, "by_reason": {}}


async def test_report_refuses_who_may_not_read_it(stack: Stack, room: str) -> None:
    path = f"/v1/rooms/{room}/report"
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
        cases = [
            ({}, 401, "unauthorized"),
            ({"Authorization": "Bearer forged.token.here"}, 401, "unauthorized"),
            (stack.headers(Role.PLAYER, [room]), 403, "forbidden"),
            (stack.headers(Role.INGEST, [room]), 403, "forbidden"),
            (stack.headers(Role.CONTROLLER, ["another-room"]), 403, "forbidden"),
        ]
        for headers, status, error in cases:
            reply = await client.get(path, headers=headers)
            assert (reply.status_code, reply.json()["error"]) == (status, error), headers
        host = stack.headers(Role.HOST, [room])
        assert (await client.get(path, headers=host)).status_code == 200
        missing = await client.get(
            "/v1/rooms/no-such-room/report", headers=stack.headers(Role.ADMIN)
        )
        assert (missing.status_code, missing.json()["error"]) == (404, "room_not_found")
        bad = await client.get("/v1/rooms/bad%20id/report", headers=stack.headers(Role.ADMIN))
        assert bad.status_code == 422


async def test_room_list_shows_the_tokens_rooms(stack: Stack, admin: httpx.AsyncClient) -> None:
    mine, theirs = await create_room(admin, start=False), await create_room(admin)
    everyone = (await admin.get("/v1/rooms", params={"limit": 500})).json()
    listed = {r["id"]: r for r in everyone}
    assert {mine, theirs} <= set(listed)
    assert listed[theirs]["product_count"] == len(PRODUCTS)
    assert listed[theirs]["status"] == "live"
    created = [r["created_at"] for r in everyone]
    assert created == sorted(created, reverse=True), "newest first"
    await admin.post(f"/v1/rooms/{theirs}/products/sku-2/pin")
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
        own = await client.get("/v1/rooms", headers=stack.headers(Role.HOST, [mine, unique("x")]))
        assert [r["id"] for r in own.json()] == [mine]
        live = await client.get(
            "/v1/rooms", params={"status": "live"}, headers=stack.headers(Role.HOST, [mine, theirs])
        )
        [only] = live.json()
        assert (only["id"], only["pinned_product_id"]) == (theirs, "sku-2")
        for params, status in (({"limit": 0}, 422), ({"status": "paused"}, 422)):
            reply = await client.get("/v1/rooms", params=params, headers=stack.headers(Role.HOST))
            assert (reply.status_code, reply.json()["error"]) == (status, "validation_error")
        player = await client.get("/v1/rooms", headers=stack.headers(Role.PLAYER))
        assert (player.status_code, player.json()["error"]) == (403, "forbidden")
        anonymous = await client.get("/v1/rooms")
        assert anonymous.status_code == 401
    await admin.post(f"/v1/rooms/{theirs}/end")


@pytest.mark.parametrize("limit", [1, 2])
async def test_room_list_limit(admin: httpx.AsyncClient, limit: int) -> None:
    await create_room(admin, start=False)
    await create_room(admin, start=False)
    assert len((await admin.get("/v1/rooms", params={"limit": limit})).json()) == limit
