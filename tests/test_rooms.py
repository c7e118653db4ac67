"""Rooms and products over REST: lifecycle, validation, pin and sold-out."""

from __future__ import annotations

import gc
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from livectl import metrics
from livectl.rooms.rules import RoomAction, RoomEnded, RoomNotLive, next_status
from tests.conftest import PRODUCTS, create_room, unique


async def test_room_lifecycle(admin: httpx.AsyncClient) -> None:
    room = unique("life")
    created = await admin.post("/v1/rooms", json={"id": room, "title": "  秋季上新  "})
    assert created.status_code == 201
    assert created.json()["status"] == "created"
    assert created.json()["title"] == "秋季上新"
    assert created.json()["currency"] == "CNY"
    again = await admin.post("/v1/rooms", json={"id": room, "title": "x"})
    assert (again.status_code, again.json()["error"]) == (409, "room_exists")

    not_live = await admin.post(f"/v1/rooms/{room}/end")
    assert (not_live.status_code, not_live.json()["error"]) == (409, "room_not_live")
    started = await admin.post(f"/v1/rooms/{room}/start")
    assert started.json()["status"] == "live"
    assert started.json()["started_at"] > 0
    assert (await admin.post(f"/v1/rooms/{room}/start")).json()["status"] == "live"  # idempotent
    ended = await admin.post(f"/v1/rooms/{room}/end")
    assert ended.json()["status"] == "ended"
    restart = await admin.post(f"/v1/rooms/{room}/start")
    assert (restart.status_code, restart.json()["error"]) == (409, "room_ended")
    assert (await admin.get(f"/v1/rooms/{room}")).json()["status"] == "ended"


async def test_products_are_replaced_listed_and_marked_sold_out(admin: httpx.AsyncClient) -> None:
    room = await create_room(admin)
    listed = (await admin.get(f"/v1/rooms/{room}/products")).json()
    assert [(p["id"], p["rank"], p["price"], p["sold_out"]) for p in listed] == [
        ("sku-1", 1, 9900, False),
        ("sku-2", 2, 29900, False),
        ("sku-3", 3, 6990, False),
    ]
    sold_out = await admin.post(f"/v1/rooms/{room}/products/sku-3/sold-out")
    assert [p["sold_out"] for p in sold_out.json()] == [False, False, True]
    missing = await admin.post(f"/v1/rooms/{room}/products/sku-9/sold-out")
    assert (missing.status_code, missing.json()["error"]) == (404, "product_not_found")

    replaced = await admin.put(f"/v1/rooms/{room}/products", json=[PRODUCTS[1]])
    assert [p["id"] for p in replaced.json()] == ["sku-2"]
    room_state = (await admin.get(f"/v1/rooms/{room}")).json()
    assert room_state["product_count"] == 1


async def test_pin_needs_a_product_of_the_room(admin: httpx.AsyncClient) -> None:
    room = await create_room(admin)
    missing = await admin.post(f"/v1/rooms/{room}/products/sku-404/pin")
    assert (missing.status_code, missing.json()["error"]) == (404, "product_not_found")
    assert (await admin.post(f"/v1/rooms/{room}/products/sku-1/pin")).json() == {
        "product_id": "sku-1"
    }
    # Unpinning another product leaves the pin alone.
    assert (await admin.delete(f"/v1/rooms/{room}/products/sku-2/pin")).json() == {
        "product_id": "sku-1"
    }
    assert (await admin.get(f"/v1/rooms/{room}")).json()["pinned_product_id"] == "sku-1"


@pytest.mark.parametrize(
    "products",
    [
        [{**PRODUCTS[0], "price": 99.5}],
        [{**PRODUCTS[0], "price": "9900"}],
        [{**PRODUCTS[0], "price": -1}],
        [{**PRODUCTS[0], "id": "has space"}],
        [{**PRODUCTS[0], "colour": "red"}],
        [{**PRODUCTS[0], "aliases": [""]}],
        [PRODUCTS[0], PRODUCTS[0]],
        {"id": "not-a-list"},
        [{"id": "x"}],
    ],
)
async def test_bad_product_lists_are_refused_and_keep_what_was_there(
    admin: httpx.AsyncClient, products: Any
) -> None:
    room = await create_room(admin)
    answer = await admin.put(f"/v1/rooms/{room}/products", json=products)
    assert answer.status_code == 422
    assert answer.json()["error"] == "validation_error"
    assert answer.json()["detail"]
    assert [p["id"] for p in (await admin.get(f"/v1/rooms/{room}/products")).json()] == [
        "sku-1",
        "sku-2",
        "sku-3",
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"id": "a b", "title": "t"},
        {"id": "x" * 65, "title": "t"},
        {"id": "ok", "title": ""},
        {"id": "ok", "title": "t", "currency": "rmb"},
        {"id": "ok"},
        {"id": 5, "title": "t"},
    ],
)
async def test_bad_rooms_are_refused(admin: httpx.AsyncClient, body: dict[str, Any]) -> None:
    answer = await admin.post("/v1/rooms", json=body)
    assert answer.status_code == 422
    assert answer.json()["error"] == "validation_error"


async def test_malformed_json_and_unknown_routes_get_error_bodies(admin: httpx.AsyncClient) -> None:
    broken = await admin.post(
        "/v1/rooms", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert (broken.status_code, broken.json()["error"]) == (400, "invalid_json")
    assert broken.json()["detail"]
    unknown = await admin.get("/v1/nothing-here")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "not_found")
    wrong_method = await admin.patch("/v1/rooms")
    assert (wrong_method.status_code, wrong_method.json()["error"]) == (405, "method_not_allowed")
    missing_room = await admin.get("/v1/rooms/no-such-room")
    assert (missing_room.status_code, missing_room.json()["error"]) == (404, "room_not_found")
    bad_id = await admin.get("/v1/rooms/bad%20id")
    assert bad_id.status_code == 422


async def test_health_and_metrics(admin: httpx.AsyncClient) -> None:
    assert (await admin.get("/healthz")).json() == {"status": "ok"}
    assert (await admin.get("/readyz")).json() == {"status": "ready"}
    metrics = await admin.get("/metrics")
    assert "livectl_events_accepted_total" in metrics.text
    assert 'livectl_collector_pause_seconds_count{generation="0"}' in metrics.text


def test_each_pass_of_the_collector_is_timed_once_by_generation() -> None:
    def full_passes() -> float | None:
        return REGISTRY.get_sample_value(
            "livectl_collector_pause_seconds_count", {"generation": "2"}
        )

    metrics.time_collector_pauses()
    metrics.time_collector_pauses()  # a second call adds nothing
    before = full_passes() or 0.0
    gc.collect()
    assert full_passes() == before + 1


@pytest.mark.parametrize(
    ("current", "action", "expected"),
    [
        ("created", "start", "live"),
        ("live", "start", None),
        ("live", "end", "ended"),
        ("ended", "end", None),
    ],
)
def test_room_lifecycle_rules(current: str, action: RoomAction, expected: str | None) -> None:
    assert next_status(current, action) == expected


@pytest.mark.parametrize(
    ("current", "action", "error"), [("ended", "start", RoomEnded), ("created", "end", RoomNotLive)]
)
def test_room_lifecycle_conflicts(current: str, action: RoomAction, error: type[Exception]) -> None:
    with pytest.raises(error):
        next_status(current, action)
