"""A drop survives its worker killed with kill -9 and its Redis crashing (kill -9, restarted
from its append-only file) in the middle of the claims: afterwards the ledger and Redis agree
and nothing is oversold.

This test runs its own Redis (restartable, AOF on, fsync every second: the default) and its
own gateway and worker pointed at it; PostgreSQL is the shared test database.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
import redis
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from livectl.auth.tokens import Role
from livectl.bus.keys import RoomKeys
from livectl.kit import codec
from tests.conftest import (
    CrashableRedis,
    Stack,
    create_room,
    wait_for,
)
from tests.test_coupons import DROP, ledger_rows

QUANTITY = 300


def fields_restored(client: redis.Redis, drop_key: str) -> bool:
    """Reconciliation put the drop's terms back from PostgreSQL."""
    return client.hget(drop_key, "quantity") == str(QUANTITY)


class Claimers:
    """Viewers claiming through claim sockets, each a new user, riding out the outage."""

    def __init__(self, stack: Stack, room: str, coupon: str) -> None:
        self.url = f"{stack.ws_url}/v1/rooms/{room}/claims?token={stack.token(Role.PLAYER, [room])}"
        self.coupon = coupon
        self.granted: dict[str, str] = {}  # user -> code
        self.sold_out = asyncio.Event()
        self._next_user = 0

    async def run(self, sockets: int = 4) -> None:
        await asyncio.gather(*(self._claim_loop() for _ in range(sockets)))

    async def _claim_loop(self) -> None:
        while not self.sold_out.is_set():
            try:
                async with connect(self.url) as socket:
                    while not self.sold_out.is_set():
                        users = [self._user() for _ in range(10)]
                        frame = [{"coupon_id": self.coupon, "user_id": u} for u in users]
                        await socket.send(codec.dumps_str(frame))
                        reply: dict[str, Any] = codec.loads(
                            await asyncio.wait_for(socket.recv(), 10)
                        )
                        for user, result in zip(users, reply["results"], strict=True):
                            if result["status"] == 201:
                                self.granted[user] = result["code"]
                            elif result.get("error") == "sold_out":
                                self.sold_out.set()
                        await asyncio.sleep(0.02)
            except (OSError, WebSocketException, TimeoutError):
                await asyncio.sleep(0.2)  # the gateway is up; this covers its reconnects

    def _user(self) -> str:
        self._next_user += 1
        return f"viewer-{self._next_user}"


@pytest.mark.parametrize("redis_comes_back", ["from_its_aof", "empty"])
async def test_kill_worker_and_crash_redis_mid_drop(
    own_stack: Stack, crashable: CrashableRedis, redis_comes_back: str
) -> None:
    async with httpx.AsyncClient(
        base_url=own_stack.base_url, headers=own_stack.headers(Role.ADMIN), timeout=10
    ) as admin:
        room = await create_room(admin)
        dropped = await admin.post(
            f"/v1/rooms/{room}/coupons", json=DROP | {"quantity": QUANTITY, "duration_s": 600}
        )
        coupon = dropped.json()["id"]
    keys = RoomKeys(room)
    client = redis.Redis(port=crashable.port, decode_responses=True)

    def claimed() -> int:
        with contextlib.suppress(redis.ConnectionError):
            return int(client.hget(keys.coupon(coupon), "claimed") or 0)
        return 0

    async def reaches(count: int) -> None:
        async def reached() -> bool:
            return claimed() >= count

        await wait_for(reached, timeout=60)

    claimers = Claimers(own_stack, room, coupon)
    load = asyncio.create_task(claimers.run())
    await reaches(60)
    own_stack.processes["worker"].kill()  # kill -9 the worker mid-drop
    own_stack.processes["worker"].wait()
    await reaches(120)
    crashable.crash(lose_files=redis_comes_back == "empty")  # and Redis, without a final fsync
    await asyncio.sleep(0.5)
    crashable.start()  # replays the append-only file
    own_stack.spawn("worker", "worker")
    await asyncio.wait_for(claimers.sold_out.wait(), timeout=120)
    await load

    async def ledger_caught_up() -> bool:
        return len(await ledger_rows(own_stack, coupon)) >= claimed()

    await wait_for(ledger_caught_up, timeout=60)
    rows = await ledger_rows(own_stack, coupon)
    # Nothing oversold: the ledger holds each ordinal once, every one within the quantity.
    assert [row["ordinal"] for row in rows] == list(range(1, QUANTITY + 1))
    assert len({row["user_id"] for row in rows}) == QUANTITY
    # Every recorded claim is one a viewer was answered with, code for code.
    assert all(claimers.granted[row["user_id"]] == row["code"] for row in rows)
    # Redis and the ledger agree: the same count, the same codes, the same users.
    assert claimed() == QUANTITY
    codes = set(client.hkeys(keys.coupon_codes))
    assert {row["code"] for row in rows} == codes
    users = client.hgetall(f"{keys.coupon(coupon)}:users")
    assert users == {row["user_id"]: "1" for row in rows}
    # Answers Redis lost in the crash (its last second; everything not yet in the ledger when
    # it comes back empty) are in neither, so they can never be redeemed: refused, not oversold.
    lost = set(claimers.granted.values()) - codes
    assert len(claimers.granted) == QUANTITY + len(lost)
    if redis_comes_back == "empty":
        assert fields_restored(client, keys.coupon(coupon))
    print(f"answered {len(claimers.granted)}, recorded {len(rows)}, lost in the crash {len(lost)}")
    client.close()
