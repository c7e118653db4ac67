"""A WebSocket fuzzer for every socket (ingest, console, live, claims), on the gateway with
small limits (conftest.LIMITED_ENV): bad tokens are refused before the upgrade, bad frames are
answered or closed with their documented code, and a bystander on the same socket kind keeps
being served, with nothing it stored lost."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from livectl.auth.tokens import ALGORITHM, Role, issue_token
from livectl.kit import codec
from tests.conftest import Console, Stack, chat, create_room, sql_value, wait_for
from tests.test_coupons import DROP

PING = '{"type": "ping"}'
_users = itertools.count()


@dataclass(frozen=True)
class SocketKind:
    role: Role
    # A frame the socket takes, and the "type" of its answer.
    valid: Callable[[str], str]
    answer: str
    # The error a binary, an oversized (past max_frame_bytes) and a non-JSON frame each get.
    refusals: tuple[str, str, str]
    # Frames that pass a limit of the connection, and the close code they get.
    flood: Callable[[str], list[str]]


def _claim(coupon: str) -> str:
    return codec.dumps_str({"coupon_id": coupon, "user_id": f"fuzz-{next(_users)}"})


def _channel(role: Role) -> SocketKind:
    """Console and live sockets take pings only; 12 pass 5 a second even across a second."""
    return SocketKind(role, lambda _: PING, "pong", ("unknown_message",) * 3, lambda _: [PING] * 12)


KINDS = {
    "ingest": SocketKind(
        Role.INGEST,
        lambda _: codec.dumps_str(chat("正常", user=f"fuzz-{next(_users)}")),
        "ack",
        ("binary_frame", "frame_too_large", "invalid_json"),
        # 60 events in one frame: past 50 a second for a connection.
        lambda _: [codec.dumps_str([chat("刷屏", user=f"f{i}") for i in range(60)])],
    ),
    "claims": SocketKind(
        Role.PLAYER,
        _claim,
        "claim",
        ("binary_frame", "frame_too_large", "invalid_json"),
        # One viewer past 2 attempts a second is answered 429 per claim, the socket stays.
        lambda coupon: [codec.dumps_str([{"coupon_id": coupon, "user_id": "greedy"}] * 3)],
    ),
    "console": _channel(Role.HOST),
    "live": _channel(Role.PLAYER),
}
FLOOD_CLOSE = {"ingest": 4029, "console": 4029, "live": 4029, "claims": None}


async def answer_of(socket: ClientConnection, kind: str) -> dict[str, Any]:
    """The next answer to a frame, past whatever a console is pushed meanwhile."""
    wanted = {KINDS[kind].answer, "error", "claims"}
    console = Console(socket)
    while True:
        message = await console.next(5)
        if message.get("type") in wanted:
            return message


async def close_code(socket: ClientConnection) -> int | None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            await asyncio.wait_for(socket.recv(), 5)
    return socket.close_code


def bad_tokens(stack: Stack, room: str, role: Role) -> list[tuple[str, int]]:
    forged = jwt.encode({"sub": "x", "role": "admin", "rooms": ["*"], "exp": 2**40}, "x" * 48)
    unsigned = jwt.encode({"sub": "x", "role": "admin", "rooms": ["*"], "exp": 2**40}, None, "none")
    expired = issue_token(stack.secret, sub="x", role=role, rooms=[room], ttl_s=-60)
    return [
        ("", 401),
        ("garbage", 401),
        (forged, 401),
        (unsigned, 401),
        (expired, 401),
        (jwt.encode({"sub": "x", "role": "root", "exp": 2**40}, stack.secret, ALGORITHM), 401),
        (stack.token(role, ["another-room"]), 403),
    ]


@pytest.mark.parametrize("kind", list(KINDS))
async def test_hostile_clients_cost_only_themselves(
    kind: str, limited: Stack, admin: httpx.AsyncClient
) -> None:
    room = await create_room(admin)
    spec = KINDS[kind]
    coupon = (await admin.post(f"/v1/rooms/{room}/coupons", json=DROP | {"per_user": 9})).json()
    url = f"{limited.ws_url}/v1/rooms/{room}/{kind}?token="

    def hostile_url() -> str:
        # A token of its own per hostile socket: a closed socket gives its open-socket slot
        # back only once the server has finished with it, which the client does not wait for.
        sub = f"hostile-{next(_users)}"
        return url + issue_token(limited.secret, sub=sub, role=spec.role, rooms=[room], ttl_s=600)

    async def served(socket: ClientConnection) -> None:
        await socket.send(spec.valid(coupon["id"]))
        assert (await answer_of(socket, kind))["type"] == spec.answer

    async with connect(url + limited.token(Role.ADMIN, [room])) as bystander:
        await served(bystander)

        for bad, status in bad_tokens(limited, room, spec.role):
            with pytest.raises(InvalidStatus) as refused:
                await connect(url + bad)
            assert refused.value.response.status_code == status, bad

        # Answered with an error, and the socket reads on.
        binary, too_large, not_json = spec.refusals
        answered: list[tuple[str | bytes, str]] = [
            (b"\x00\x01binary", binary),
            ('"' + "长" * 6000 + '"', too_large),  # 18 KB of UTF-8, 6,000 characters
            ("{not json", not_json),
        ]
        for frame, error in answered:
            async with connect(hostile_url()) as hostile:
                await hostile.send(frame)
                assert (await answer_of(hostile, kind))["error"] == error
                await served(hostile)

        # Closed by the protocol: past ws_protocol_max_bytes, and text that is not UTF-8.
        closing: list[tuple[str | bytes, int]] = [
            ("x" * 70_000, 1009),
            (b'{"a": "\xff\xfe"}', 1007),
        ]
        for frame, code in closing:
            async with connect(hostile_url(), max_size=None) as hostile:
                await hostile.send(frame, text=True)
                assert await close_code(hostile) == code

        async with connect(hostile_url()) as hostile:
            for frame in spec.flood(coupon["id"]):
                await hostile.send(frame)
            if FLOOD_CLOSE[kind] is None:
                results = (await answer_of(hostile, kind))["results"]
                assert [r["status"] for r in results] == [201, 201, 429]
            else:
                assert await close_code(hostile) == FLOOD_CLOSE[kind]

        await served(bystander)

    # Nothing taken was lost: two valid frames of the bystander, one of each hostile socket
    # that read on, and for claims the two of the flood that were within the limit.
    if kind == "ingest":

        async def all_counted() -> bool:
            stats = (await admin.get(f"/v1/rooms/{room}/stats")).json()
            return bool(stats["comments"] == 2 + len(answered))

        await wait_for(all_counted)
    if kind == "claims":
        granted = 2 + len(answered) + 2

        async def all_recorded() -> bool:
            recorded = await sql_value(
                limited.database_url,
                "SELECT count(*) FROM coupon_claims WHERE drop_id = :d",
                d=coupon["id"],
            )
            return bool(recorded == granted)

        await wait_for(all_recorded, timeout=20)
        figures = (await admin.get(f"/v1/rooms/{room}/coupons/{coupon['id']}")).json()
        assert figures["claimed"] == granted
    await admin.post(f"/v1/rooms/{room}/end")
