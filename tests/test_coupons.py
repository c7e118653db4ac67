"""Flash coupons over REST and the claim socket: drops, claims, every error answer, auth."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from livectl.auth.tokens import Role
from livectl.kit import codec
from tests.conftest import Console, Stack, create_room, open_console, unique, wait_for

DROP: dict[str, Any] = {
    "title": "直播间专享",
    "kind": "amount_off",
    "value": 1000,
    "min_spend": 9900,
    "quantity": 100,
    "per_user": 1,
    "duration_s": 60,
    "audience": "all",
}


async def drop(client: httpx.AsyncClient, room: str, **terms: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/rooms/{room}/coupons", json=DROP | terms)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def claim(
    client: httpx.AsyncClient, room: str, coupon: str, user: str, key: str | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"user_id": user}
    if key:
        body["idempotency_key"] = key
    return await client.post(f"/v1/rooms/{room}/coupons/{coupon}/claims", json=body)


async def ledger_rows(stack: Stack, coupon: str) -> list[dict[str, Any]]:
    engine = create_async_engine(stack.database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(
                text("SELECT * FROM coupon_claims WHERE drop_id = :d ORDER BY ordinal"),
                {"d": coupon},
            )
            return [dict(row._mapping) for row in result]
    finally:
        await engine.dispose()


async def test_drop_claim_and_every_claim_answer(admin: httpx.AsyncClient, room: str) -> None:
    dropped = await drop(admin, room, quantity=2, per_user=1)
    assert dropped["state"] == "live"
    assert (dropped["remaining"], dropped["claimed"]) == (2, 0)
    assert dropped["ends_at"] > 0
    coupon = dropped["id"]

    first = await claim(admin, room, coupon, "u1")
    assert first.status_code == 201, first.text
    assert set(first.json()) == {"claim_id", "code", "expires_at"}
    assert len(first.json()["code"]) >= 16

    again = await claim(admin, room, coupon, "u1")
    assert (again.status_code, again.json()["error"]) == (409, "limit_reached")
    assert (await claim(admin, room, coupon, "u2")).status_code == 201
    sold_out = await claim(admin, room, coupon, "u3")
    assert (sold_out.status_code, sold_out.json()["error"]) == (409, "sold_out")

    missing = await claim(admin, room, "cp-nope", "u1")
    assert (missing.status_code, missing.json()["error"]) == (404, "not_found")

    other = await drop(admin, room)
    stopped = await admin.post(f"/v1/rooms/{room}/coupons/{other['id']}/stop")
    assert stopped.status_code == 200
    assert (stopped.json()["state"], stopped.json()["end_reason"]) == ("ended", "stopped")
    ended = await claim(admin, room, other["id"], "u1")
    assert (ended.status_code, ended.json()["error"]) == (410, "ended")

    fans_only = await drop(admin, room, audience="fans")
    refused = await claim(admin, room, fans_only["id"], "u1")
    assert (refused.status_code, refused.json()["error"]) == (403, "not_eligible")

    listed = (await admin.get(f"/v1/rooms/{room}/coupons")).json()
    assert [(d["id"], d["claimed"], d["remaining"]) for d in listed][:1] == [(coupon, 2, 0)]
    detail = (await admin.get(f"/v1/rooms/{room}/coupons/{coupon}")).json()
    assert (detail["claimed"], detail["state"], detail["end_reason"]) == (2, "ended", "sold_out")


@pytest.mark.parametrize(
    ("terms", "status", "error"),
    [
        ({"value": 10.5}, 422, "validation_error"),
        ({"min_spend": 9900.0}, 422, "validation_error"),
        ({"kind": "percent_off", "value": 100, "min_spend": 0}, 422, "validation_error"),
        ({"kind": "free_lunch"}, 422, "validation_error"),
        ({"quantity": 0}, 422, "validation_error"),
        ({"quantity": "100"}, 422, "validation_error"),
        ({"per_user": -1}, 422, "validation_error"),
        ({"audience": "vip"}, 422, "validation_error"),
        ({"duration_s": 0}, 422, "validation_error"),
        ({"product_ids": ["bad id!"]}, 422, "validation_error"),
        ({"product_ids": ["sku-404"]}, 404, "product_not_found"),
        ({"surprise": 1}, 422, "validation_error"),
        ({"value": 20000}, 422, "validation_error"),  # more off than the threshold
    ],
)
async def test_bad_drop_bodies_are_refused(
    admin: httpx.AsyncClient, room: str, terms: dict[str, Any], status: int, error: str
) -> None:
    response = await admin.post(f"/v1/rooms/{room}/coupons", json=DROP | terms)
    assert (response.status_code, response.json()["error"]) == (status, error), response.text
    assert (await admin.get(f"/v1/rooms/{room}/coupons")).json() == []


async def test_malformed_bodies_and_claims(admin: httpx.AsyncClient, room: str) -> None:
    url = f"/v1/rooms/{room}/coupons"
    not_json = await admin.post(url, content=b"{nope", headers={"content-type": "application/json"})
    assert (not_json.status_code, not_json.json()["error"]) == (400, "invalid_json")
    array = await admin.post(url, json=[DROP])
    assert (array.status_code, array.json()["error"]) == (400, "invalid_body")
    huge = await admin.post(url, content=b"[" + b" " * 70_000 + b"]")
    assert (huge.status_code, huge.json()["error"]) == (413, "body_too_large")

    coupon = (await drop(admin, room))["id"]
    claims = f"/v1/rooms/{room}/coupons/{coupon}/claims"
    for body in ({}, {"user_id": ""}, {"user_id": "a b"}, {"user_id": 7}, {"user_id": "u", "x": 1}):
        bad = await admin.post(claims, json=body)
        assert (bad.status_code, bad.json()["error"]) == (422, "validation_error"), body
    bad_key = await admin.post(claims, json={"user_id": "u1", "idempotency_key": "x" * 65})
    assert bad_key.status_code == 422
    for bad_id in ("a%20b", f"{coupon}:users", f"{coupon}:keys"):
        bad_path = await admin.post(
            f"/v1/rooms/{room}/coupons/{bad_id}/claims", json={"user_id": "u"}
        )
        assert (bad_path.status_code, bad_path.json()["error"]) == (422, "validation_error")
    # User ids that are also the names of a drop's fields change nothing for anyone.
    for user in ("state", "quantity", "claimed"):
        assert (await claim(admin, room, coupon, user)).status_code == 201
    assert (await admin.get(f"/v1/rooms/{room}/coupons/{coupon}")).json()["claimed"] == 3


async def test_a_drop_needs_a_live_room_and_ends_with_it(admin: httpx.AsyncClient) -> None:
    idle = await create_room(admin, start=False)
    refused = await admin.post(f"/v1/rooms/{idle}/coupons", json=DROP)
    assert (refused.status_code, refused.json()["error"]) == (409, "room_not_live")
    missing = await admin.post(f"/v1/rooms/{unique('ghost')}/coupons", json=DROP)
    assert (missing.status_code, missing.json()["error"]) == (404, "room_not_found")

    room = await create_room(admin)
    coupon = (await drop(admin, room))["id"]
    assert (await admin.post(f"/v1/rooms/{room}/end")).status_code == 200
    detail = (await admin.get(f"/v1/rooms/{room}/coupons/{coupon}")).json()
    assert (detail["state"], detail["end_reason"]) == ("ended", "room_ended")
    late = await claim(admin, room, coupon, "u1")
    assert (late.status_code, late.json()["error"]) == (410, "ended")


async def test_roles_rooms_and_tokens(stack: Stack, admin: httpx.AsyncClient, room: str) -> None:
    template = await admin.post(f"/v1/rooms/{room}/coupon-templates", json=DROP)
    assert template.status_code == 201
    template_id = template.json()["id"]
    coupon = (await drop(admin, room))["id"]

    async def call(role: Role, rooms: list[str], method: str, path: str, body: Any = None) -> int:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
            response = await client.request(
                method, path, json=body, headers=stack.headers(role, rooms)
            )
            assert "error" in response.json() or response.status_code < 300
            return response.status_code

    base = f"/v1/rooms/{room}"
    # An assistant drops from a template, not from full terms; a host cannot drop at all.
    assert await call(Role.ASSISTANT, [room], "POST", f"{base}/coupons", DROP) == 403
    assert (
        await call(Role.ASSISTANT, [room], "POST", f"{base}/coupons", {"template_id": template_id})
        == 201
    )
    assert (
        await call(Role.HOST, [room], "POST", f"{base}/coupons", {"template_id": template_id})
        == 403
    )
    assert await call(Role.ASSISTANT, [room], "POST", f"{base}/coupon-templates", DROP) == 403
    assert await call(Role.PLAYER, [room], "POST", f"{base}/coupons/{coupon}/stop") == 403
    assert await call(Role.INGEST, [room], "GET", f"{base}/coupons") == 403
    # A token for another room is refused everywhere.
    other = [unique("elsewhere")]
    for method, path, body in [
        ("GET", f"{base}/coupons", None),
        ("GET", f"{base}/coupons/{coupon}", None),
        ("POST", f"{base}/coupons/{coupon}/claims", {"user_id": "u1"}),
        ("POST", f"{base}/coupons", DROP),
        ("POST", f"{base}/coupons/{coupon}/stop", None),
        ("GET", f"{base}/coupon-templates", None),
    ]:
        assert await call(Role.ADMIN, other, method, path, body) == 403, path
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as anonymous:
        no_token = await anonymous.post(f"{base}/coupons/{coupon}/claims", json={"user_id": "u"})
        assert (no_token.status_code, no_token.json()["error"]) == (401, "unauthorized")
        forged = await anonymous.get(
            f"{base}/coupons", headers={"Authorization": "Bearer not.a.token"}
        )
        assert forged.status_code == 401
    unknown_template = await admin.post(f"{base}/coupons", json={"template_id": "tpl-nope"})
    assert (unknown_template.status_code, unknown_template.json()["error"]) == (
        404,
        "template_not_found",
    )
    templates = (await admin.get(f"{base}/coupon-templates")).json()
    assert [t["id"] for t in templates] == [template_id]
    assert (await admin.get(f"{base}/coupons/cp-nope")).status_code == 404
    assert (await admin.post(f"{base}/coupons/cp-nope/stop")).status_code == 404
    assert (await admin.get(f"{base}/coupons/{coupon}")).json()["claimed"] == 0


async def test_5000_concurrent_claims_never_oversell(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    room = await create_room(admin)
    coupon = (await drop(admin, room, quantity=100, per_user=1))["id"]
    users = [f"viewer-{i % 2000}" for i in range(5000)]
    rest_users, socket_users = users[:2500], users[2500:]

    limits = httpx.Limits(max_connections=100)
    async with httpx.AsyncClient(
        base_url=stack.base_url,
        headers=stack.headers(Role.PLAYER, [room]),
        limits=limits,
        timeout=60,
    ) as player:

        async def rest_claims(batch: list[str]) -> list[tuple[str, int, dict[str, Any]]]:
            # 100 clients each claiming in turn: a pool of 100 connections kept busy (one task
            # per request would spend the test's CPU queueing for the pool instead).
            answers = []
            for user in batch:
                response = await claim(player, room, coupon, user)
                answers.append((user, response.status_code, response.json()))
            return answers

        async def socket_claims(batch: list[str]) -> list[tuple[str, int, dict[str, Any]]]:
            url = f"{stack.ws_url}/v1/rooms/{room}/claims?token={stack.token(Role.PLAYER, [room])}"
            async with connect(url) as socket:
                # Every frame sent before any answer is read: they race each other and REST.
                for user in batch:
                    await socket.send(codec.dumps_str({"coupon_id": coupon, "user_id": user}))
                answers = [codec.loads(await socket.recv()) for _ in batch]
            return [(user, a["status"], a) for user, a in zip(batch, answers, strict=True)]

        chunks = [socket_users[i : i + 100] for i in range(0, len(socket_users), 100)]
        answered = await asyncio.gather(
            *(rest_claims(rest_users[i::100]) for i in range(100)),
            *(socket_claims(chunk) for chunk in chunks),
        )
    results = [answer for batch in answered for answer in batch]
    assert len(results) == 5000
    statuses = Counter(status for _, status, _ in results)
    assert statuses[201] == 100, statuses
    assert set(statuses) <= {201, 409}, statuses
    winners = Counter(user for user, status, _ in results if status == 201)
    assert max(winners.values()) == 1
    codes = {body["code"] for _, status, body in results if status == 201}
    assert len(codes) == 100

    detail = (await admin.get(f"/v1/rooms/{room}/coupons/{coupon}")).json()
    assert (detail["claimed"], detail["remaining"]) == (100, 0)

    async def ledger_full() -> bool:
        return len(await ledger_rows(stack, coupon)) == 100

    await wait_for(ledger_full, timeout=30)
    rows = await ledger_rows(stack, coupon)
    assert [row["ordinal"] for row in rows] == list(range(1, 101))
    assert {row["code"] for row in rows} == codes
    assert {row["user_id"] for row in rows} == set(winners)


async def test_idempotency_key_answers_the_first_answer(
    stack: Stack, admin: httpx.AsyncClient, room: str
) -> None:
    coupon = (await drop(admin, room, quantity=10, per_user=3))["id"]
    first = await claim(admin, room, coupon, "u1", key="k-1")
    assert first.status_code == 201
    for _ in range(3):
        repeat = await claim(admin, room, coupon, "u1", key="k-1")
        assert (repeat.status_code, repeat.json()) == (201, first.json())

    together = await asyncio.gather(
        *(claim(admin, room, coupon, "u2", key="k-2") for _ in range(40))
    )
    assert {r.status_code for r in together} == {201}
    assert len({r.json()["code"] for r in together}) == 1

    stolen = await claim(admin, room, coupon, "u3", key="k-1")
    assert (stolen.status_code, stolen.json()["error"]) == (409, "idempotency_key_reused")

    detail = (await admin.get(f"/v1/rooms/{room}/coupons/{coupon}")).json()
    assert detail["claimed"] == 2

    async def both_recorded() -> bool:
        return len(await ledger_rows(stack, coupon)) == 2

    await wait_for(both_recorded, timeout=20)
    rows = await ledger_rows(stack, coupon)
    assert [(r["user_id"], r["idempotency_key"]) for r in rows] == [("u1", "k-1"), ("u2", "k-2")]


async def coupon_update(
    channel: Console, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        data: dict[str, Any] = (await channel.next_of("coupon", max(remaining, 0.01)))["data"]
        if predicate(data):
            return data


async def test_pushes_snapshot_and_end_on_time(
    stack: Stack, admin: httpx.AsyncClient, room: str
) -> None:
    console = await open_console(stack, room)
    live = await open_console(stack, room, role=Role.PLAYER, channel="live")
    await console.next_of("snapshot")
    await live.next_of("snapshot")
    coupon = (await drop(admin, room, quantity=5))["id"]
    for channel in (console, live):
        started = (await channel.next_of("coupon"))["data"]
        assert (started["id"], started["state"], started["remaining"]) == (coupon, "live", 5)
        assert "gmv" not in started

    for role, channel_name in ((Role.HOST, "console"), (Role.PLAYER, "live")):
        snapshot = await open_console(stack, room, role=role, channel=channel_name)
        coupons = (await snapshot.next_of("snapshot"))["data"]["coupons"]
        assert [(c["id"], c["state"], c["remaining"]) for c in coupons] == [(coupon, "live", 5)]
        await snapshot.socket.close()

    for user in ("a", "b"):
        assert (await claim(admin, room, coupon, user)).status_code == 201
    # Pushed while draining: at most once a second, so the first may show one claim.
    drained = await coupon_update(console, lambda c: c["claimed"] == 2)
    assert (drained["state"], drained["remaining"]) == ("live", 3)

    assert (await admin.post(f"/v1/rooms/{room}/coupons/{coupon}/stop")).status_code == 200
    for channel in (console, live):
        ended = await coupon_update(channel, lambda c: c["state"] == "ended")
        assert (ended["end_reason"], ended["claimed"]) == ("stopped", 2)

    # Nobody claims this one: the room tick still ends it on time.
    brief = await drop(admin, room, duration_s=1)
    await console.next_of("coupon")
    time_up = (await console.next_of("coupon", timeout=10))["data"]
    assert (time_up["id"], time_up["state"], time_up["end_reason"]) == (
        brief["id"],
        "ended",
        "time_up",
    )
    assert time_up["remaining"] == 100
    late = await claim(admin, room, brief["id"], "c")
    assert (late.status_code, late.json()["error"]) == (410, "ended")
    await console.socket.close()
    await live.socket.close()


def order(
    user: str, order_id: str, amount: int, code: str, product: str = "sku-1"
) -> dict[str, Any]:
    return {
        "type": "order",
        "user": {"id": user},
        "product_id": product,
        "order": {"id": order_id, "quantity": 1, "amount": amount, "coupon_code": code},
    }


async def test_redemption_once_with_threshold_and_scope(
    stack: Stack, admin: httpx.AsyncClient, room: str
) -> None:
    coupon = (await drop(admin, room, product_ids=["sku-1"], min_spend=9900, value=1000))["id"]
    granted = (await claim(admin, room, coupon, "u1")).json()
    code = granted["code"]
    events = f"/v1/rooms/{room}/events"
    refused = [
        order("u1", "o-late", 19900, code) | {"ts": granted["expires_at"] + 1},  # expired
        order("u1", "o-small", 5000, code),  # below the threshold
        order("u1", "o-other", 29900, code, product="sku-2"),  # outside the scope
        order("u2", "o-thief", 19900, code),  # someone else's code
        order("u1", "o-guess", 19900, "not-a-code"),
    ]
    assert (await admin.post(events, json=refused)).status_code == 202
    assert (await admin.post(events, json=order("u1", "o-1", 19900, code))).status_code == 202
    again = [order("u1", "o-1", 19900, code), order("u1", "o-2", 50000, code)]
    assert (await admin.post(events, json=again)).status_code == 202

    async def redeemed() -> bool:
        rows = await ledger_rows(stack, coupon)
        return bool(rows) and rows[0]["redeemed_at"] is not None

    await wait_for(redeemed, timeout=20)
    await asyncio.sleep(1.0)  # time for a wrongful second redemption to show, if any
    detail = (await admin.get(f"/v1/rooms/{room}/coupons/{coupon}")).json()
    assert (detail["redeemed"], detail["gmv"], detail["cost"]) == (1, 19900, 1000)
    assert detail["roi"] == 19.9
    row = (await ledger_rows(stack, coupon))[0]
    assert (row["order_id"], row["order_amount"], row["discount"]) == ("o-1", 19900, 1000)


async def test_audiences_follow_the_rooms_events(admin: httpx.AsyncClient, room: str) -> None:
    fans = (await drop(admin, room, audience="fans"))["id"]
    newcomers = (await drop(admin, room, audience="new"))["id"]
    events = [
        {"type": "follow", "user": {"id": "follower"}},
        {"type": "enter", "user": {"id": "fan", "fan": True}},
        {"type": "enter", "user": {"id": "rookie", "new": True}},
    ]
    assert (await admin.post(f"/v1/rooms/{room}/events", json=events)).status_code == 202

    async def rookie_flagged() -> bool:
        return (await claim(admin, room, newcomers, "rookie")).status_code == 201

    await wait_for(rookie_flagged, timeout=10)
    assert (await claim(admin, room, fans, "follower")).status_code == 201
    assert (await claim(admin, room, fans, "fan")).status_code == 201
    assert (await claim(admin, room, fans, "rookie")).json()["error"] == "not_eligible"
    assert (await claim(admin, room, newcomers, "fan")).json()["error"] == "not_eligible"


async def test_claim_socket_frames(stack: Stack, admin: httpx.AsyncClient, room: str) -> None:
    coupon = (await drop(admin, room, quantity=2))["id"]
    url = f"{stack.ws_url}/v1/rooms/{room}/claims?token={stack.token(Role.PLAYER, [room])}"
    async with connect(url) as socket:
        batch = [
            {"coupon_id": coupon, "user_id": "u1", "idempotency_key": "s1"},
            {"coupon_id": coupon, "user_id": "u1", "idempotency_key": "s1"},
            {"coupon_id": coupon, "user_id": 5},
            {"coupon_id": coupon, "user_id": "u2"},
            {"coupon_id": coupon, "user_id": "u3"},
            {"coupon_id": "cp-nope", "user_id": "u3"},
        ]
        await socket.send(codec.dumps_str(batch))
        reply = codec.loads(await socket.recv())
        assert reply["type"] == "claims"
        statuses = [(r["status"], r.get("error")) for r in reply["results"]]
        assert statuses == [
            (201, None),
            (201, None),
            (422, "validation_error"),
            (201, None),
            (409, "sold_out"),
            (404, "not_found"),
        ]
        assert reply["results"][0]["code"] == reply["results"][1]["code"]
        for frame, error in [
            ("{nope", "invalid_json"),
            ("[]", "invalid_body"),
            (codec.dumps_str([{"coupon_id": coupon, "user_id": "u"}] * 1001), "invalid_body"),
        ]:
            await socket.send(frame)
            assert codec.loads(await socket.recv())["error"] == error
        await socket.send(b"binary")
        assert codec.loads(await socket.recv())["error"] == "binary_frame"
        # The socket is still good after every refusal.
        await socket.send(codec.dumps_str({"coupon_id": coupon, "user_id": "u9"}))
        assert codec.loads(await socket.recv()) | {"detail": ""} == {
            "type": "claim",
            "status": 409,
            "error": "sold_out",
            "detail": "",
        }
    for token, status in [
        ("", 401),
        (stack.token(Role.PLAYER, [unique("other")]), 403),
        (stack.token(Role.INGEST, [room]), 403),
    ]:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"{stack.ws_url}/v1/rooms/{room}/claims?token={token}"):
                pass
        assert refused.value.response.status_code == status
