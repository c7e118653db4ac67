"""Limits against abuse, reached on a gateway with small limits (conftest.LIMITED_ENV): each
answers with its documented close code or 429, and costs only the client that passed it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from livectl.auth.tokens import Role
from livectl.kit import codec
from tests.conftest import Console, Stack, chat, open_console, wait_for
from tests.test_coupons import DROP

RATE_LIMITED = 4029


def events(count: int, prefix: str) -> list[dict[str, Any]]:
    return [chat(f"第{i}条", user=f"{prefix}-{i}") for i in range(count)]


async def start_of_a_second() -> None:
    """Limits count per whole second: start where a few quick calls share one."""
    await asyncio.sleep(1.02 - time.time() % 1)


async def until_closed(socket: Console) -> list[dict[str, Any]]:
    """What the server sends until it closes the socket."""
    received: list[dict[str, Any]] = []
    try:
        while True:
            received.append(await socket.next(5))
    except ConnectionClosed:
        return received


async def test_an_ingest_socket_past_its_events_per_second_is_closed_4029(
    limited: Stack, room: str, admin: httpx.AsyncClient
) -> None:
    url = f"{limited.ws_url}/v1/rooms/{room}/ingest?token="
    token = limited.token(Role.INGEST, [room])
    async with connect(url + token) as hostile, connect(url + token) as bystander:
        # 20 events a frame, 50 a second per connection: the third frame of a second is one
        # too many (a second boundary may let one more through).
        for _ in range(6):
            await hostile.send(codec.dumps_str(events(20, "flood")))
        *acks, refusal = await until_closed(Console(hostile))
        assert hostile.close_code == RATE_LIMITED
        assert 2 <= len(acks) <= 4
        ack = {"type": "ack", "accepted": 20, "duplicates": 0, "rejected": []}
        assert all(a == ack for a in acks)
        assert refusal["error"] == "rate_limited"
        # Another connection of another token is served as before.
        async with connect(url + limited.token(Role.ADMIN, [room])) as fresh:
            await fresh.send(codec.dumps_str(chat("还在吗", user="ok")))
            assert codec.loads(await fresh.recv())["accepted"] == 1
        assert bystander.close_code is None
    stored = len(acks) * 20 + 1

    async def all_counted() -> bool:
        stats = (await admin.get(f"/v1/rooms/{room}/stats")).json()
        return bool(stats["comments"] == stored)

    await wait_for(all_counted)


async def test_ingest_sockets_of_one_token_share_its_events_per_second(
    limited: Stack, room: str
) -> None:
    url = f"{limited.ws_url}/v1/rooms/{room}/ingest?token={limited.token(Role.INGEST, [room])}"
    async with connect(url) as first, connect(url) as second:
        for _ in range(3):  # a second boundary between the frames resets the count
            await start_of_a_second()
            await first.send(codec.dumps_str(events(40, "a")))
            await second.send(codec.dumps_str(events(40, "b")))
            acks = [codec.loads(await first.recv()), codec.loads(await second.recv())]
            assert [ack["accepted"] for ack in acks] == [40, 40]
            # 80 a second for the token: each socket is within its own 50, the token is not.
            await second.send(codec.dumps_str(events(5, "c")))
            answer = codec.loads(await second.recv())
            if answer["type"] == "error":
                break
        assert answer["error"] == "rate_limited"
        with pytest.raises(ConnectionClosed):
            await second.recv()
        assert second.close_code == RATE_LIMITED


async def test_a_token_past_its_events_per_second_on_any_gateway_gets_429(
    stack: Stack, limited: Stack, room: str
) -> None:
    headers = limited.headers(Role.INGEST, [room])
    path = f"/v1/rooms/{room}/events"
    async with (
        httpx.AsyncClient(base_url=stack.base_url, headers=headers) as first_gateway,
        httpx.AsyncClient(base_url=limited.base_url, headers=headers) as limited_gateway,
    ):
        for _ in range(3):  # a second boundary between the two calls resets the count
            await start_of_a_second()
            taken = await first_gateway.post(path, json=events(50, "g1"))
            assert taken.status_code == 202
            # 50 counted by the first gateway + 40 > 80 a second for this token.
            refused = await limited_gateway.post(path, json=events(40, "g2"))
            if refused.status_code == 429:
                break
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"] == "rate_limited"
        assert refused.headers["retry-after"] == "1"
        await start_of_a_second()
        assert (await limited_gateway.post(path, json=events(40, "g3"))).status_code == 202


async def test_a_token_holds_a_bounded_number_of_sockets_across_gateways(
    stack: Stack, limited: Stack, room: str
) -> None:
    token = limited.token(Role.HOST, [room])
    path = f"/v1/rooms/{room}/console?token={token}"
    held = [
        await connect(f"{stack.ws_url}{path}"),
        await connect(f"{stack.ws_url}{path}"),
        await connect(f"{limited.ws_url}{path}"),
    ]
    try:
        with pytest.raises(InvalidStatus) as refused:
            await connect(f"{limited.ws_url}{path}")
        assert refused.value.response.status_code == 429
        assert codec.loads(refused.value.response.body or b"{}")["error"] == "rate_limited"
        # Another token is not counted with this one.
        other = await open_console(limited, room, role=Role.ASSISTANT)
        await other.next_of("snapshot")
        await other.socket.close()
        # A socket that closes gives its slot back.
        await held.pop().close()
        await asyncio.sleep(0.2)
        fourth = Console(await connect(f"{limited.ws_url}{path}"))
        held.append(fourth.socket)
        assert (await fourth.next())["type"] == "snapshot"
    finally:
        for socket in held:
            await socket.close()


async def test_claims_past_a_viewers_attempts_per_second_get_429(
    limited: Stack, room: str, admin: httpx.AsyncClient
) -> None:
    coupon = (await admin.post(f"/v1/rooms/{room}/coupons", json=DROP | {"per_user": 5})).json()
    path = f"/v1/rooms/{room}/coupons/{coupon['id']}/claims"
    async with httpx.AsyncClient(
        base_url=limited.base_url, headers=limited.headers(Role.PLAYER, [room])
    ) as player:
        await start_of_a_second()
        answers = [await player.post(path, json={"user_id": "eager"}) for _ in range(3)]
        assert [a.status_code for a in answers] == [201, 201, 429]
        assert answers[2].json()["error"] == "rate_limited"
        assert answers[2].headers["retry-after"] == "1"
        # Other viewers are decided as usual, and retries of one idempotency key count once.
        assert (await player.post(path, json={"user_id": "calm"})).status_code == 201
        retry = {"user_id": "patient", "idempotency_key": "k-1"}
        retries = await asyncio.gather(*(player.post(path, json=retry) for _ in range(6)))
        assert {r.status_code for r in retries} == {201}
        assert len({r.json()["code"] for r in retries}) == 1
    url = f"{limited.ws_url}/v1/rooms/{room}/claims?token={limited.token(Role.PLAYER, [room])}"
    async with connect(url) as socket:
        await start_of_a_second()
        await socket.send(codec.dumps_str([{"coupon_id": coupon["id"], "user_id": "bulk"}] * 3))
        results = codec.loads(await socket.recv())["results"]
        assert [r["status"] for r in results] == [201, 201, 429]
        assert results[2]["error"] == "rate_limited"
    # Refused attempts took nothing: 2 + 1 + 1 + 2 granted.
    figures = (await admin.get(f"/v1/rooms/{room}/coupons/{coupon['id']}")).json()
    assert figures["claimed"] == 6


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # not a browser
        ("SAME", True),
        ("https://console.example", True),  # LIVECTL_ALLOWED_ORIGINS
        ("https://evil.example", False),
        ("null", False),
    ],
)
async def test_console_sockets_check_the_browser_origin(
    limited: Stack, room: str, origin: str | None, allowed: bool
) -> None:
    url = f"{limited.ws_url}/v1/rooms/{room}/console?token={limited.token(Role.HOST, [room])}"
    headers = {"Origin": limited.base_url if origin == "SAME" else origin} if origin else {}
    async with connect(url, additional_headers=headers) as socket:
        if allowed:
            assert codec.loads(await socket.recv())["type"] == "snapshot"
        else:
            with pytest.raises(ConnectionClosed):
                await socket.recv()
            assert socket.close_code == 4003


async def test_the_live_channel_takes_any_origin(limited: Stack, room: str) -> None:
    url = f"{limited.ws_url}/v1/rooms/{room}/live?token={limited.token(Role.PLAYER, [room])}"
    async with connect(url, additional_headers={"Origin": "https://overlay.example"}) as socket:
        assert codec.loads(await socket.recv())["type"] == "snapshot"


async def test_a_console_flooding_messages_is_closed_4029(limited: Stack, room: str) -> None:
    console = await open_console(limited, room)
    bystander = await open_console(limited, room)
    await console.next_of("snapshot")
    await bystander.next_of("snapshot")
    await start_of_a_second()
    for _ in range(8):  # 5 a second
        await console.socket.send('{"type": "ping"}')
    received = await until_closed(console)
    pongs = sum(1 for message in received if message["type"] == "pong")
    errors = [message["error"] for message in received if message["type"] == "error"]
    assert pongs == 5
    assert errors == ["rate_limited"]
    assert console.socket.close_code == RATE_LIMITED
    await bystander.socket.send('{"type": "ping"}')
    assert (await bystander.next_of("pong"))["type"] == "pong"
    await bystander.socket.close()
