"""livectl on a 3-shard Redis Cluster with two gateways and two workers, as it scales out.

Gateway 1 and a worker use one cluster node as their seed, gateway 2 and the other worker
another: each client learns the slot map itself. Rooms are chosen so that each shard owns one.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
from redis.crc import key_slot

from livectl.auth.tokens import Role
from livectl.bus.connection import open_redis
from livectl.bus.keys import RoomKeys
from livectl.config import Settings
from tests.conftest import (
    PRODUCTS,
    TEST_ENV,
    Stack,
    chat,
    free_port,
    open_console,
    running_stack,
    unique,
    wait_for,
)
from tests.redis_cluster import ClusterNode, local_cluster
from tests.test_coupons import DROP, claim, ledger_rows


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ClusterNode]]:
    with local_cluster(tmp_path_factory.mktemp("cluster"), shards=3) as nodes:
        yield nodes


@pytest.fixture(scope="module")
def gateways(
    cluster: list[ClusterNode], database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, Stack]]:
    secret = secrets.token_urlsafe(48)
    data_dir = str(tmp_path_factory.mktemp("cluster-data"))
    stacks = []
    for seed in cluster[:2]:
        port = free_port()
        env = {
            **os.environ,
            **TEST_ENV,
            "LIVECTL_REDIS_URL": seed.url,
            "LIVECTL_REDIS_CLUSTER": "true",
            "LIVECTL_DATABASE_URL": database_url,
            "LIVECTL_SECRET": secret,
            "LIVECTL_PORT": str(port),
            "LIVECTL_DATA_DIR": data_dir,
        }
        stacks.append(Stack(f"http://127.0.0.1:{port}", secret, seed.url, database_url, env))
    with ExitStack() as running:
        first, second = (running.enter_context(running_stack(stack)) for stack in stacks)
        yield first, second


def room_on(node: ClusterNode) -> str:
    """A fresh room id whose hash tag falls in ``node``'s slots."""
    while True:
        room = unique("room")
        if node.first_slot <= key_slot(room.encode()) <= node.last_slot:
            return room


async def start_room(client: httpx.AsyncClient, room: str) -> None:
    assert (await client.post("/v1/rooms", json={"id": room, "title": "集群"})).status_code == 201
    assert (await client.put(f"/v1/rooms/{room}/products", json=PRODUCTS)).status_code == 200
    assert (await client.post(f"/v1/rooms/{room}/start")).status_code == 200


def admin_of(stack: Stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.base_url, headers=stack.headers(Role.ADMIN), timeout=30)


async def test_consoles_on_one_gateway_follow_rooms_on_every_shard_fed_through_the_other(
    cluster: list[ClusterNode], gateways: tuple[Stack, Stack]
) -> None:
    first, second = gateways
    rooms = [room_on(node) for node in cluster]
    async with admin_of(first) as admin, admin_of(second) as feeder:
        for room in rooms:
            await start_room(admin, room)
        # Each room's state sits on its own shard, and only there.
        for room, owner in zip(rooms, cluster, strict=True):
            for node in cluster:
                with node.client() as client:
                    held = list(client.scan_iter(match=f"{RoomKeys(room).tag}:*"))
                assert bool(held) == (node is owner), (room, node, held)
        consoles = [await open_console(first, room) for room in rooms]
        for console in consoles:
            await console.next_of("snapshot")
        # Many small requests, one after another: consecutive stream entries that either
        # worker may take.
        for start in range(0, 200, 5):
            for room in rooms:
                events = [chat(f"{room} #{i}", user=f"u{i}") for i in range(start, start + 5)]
                response = await feeder.post(f"/v1/rooms/{room}/events", json=events)
                assert response.status_code == 202, response.text
        for room, console in zip(rooms, consoles, strict=True):
            received = await console.collect(200, timeout=20)
            assert [m["data"]["text"] for m in received] == [f"{room} #{i}" for i in range(200)]
            seqs = [m["seq"] for m in received]
            assert seqs == sorted(seqs)
            await console.socket.close()


async def test_claims_through_both_gateways_never_oversell(
    cluster: list[ClusterNode], gateways: tuple[Stack, Stack]
) -> None:
    room = room_on(cluster[2])
    async with admin_of(gateways[0]) as admin:
        await start_room(admin, room)
        drop = await admin.post(f"/v1/rooms/{room}/coupons", json=DROP | {"quantity": 50})
        assert drop.status_code == 201, drop.text
        coupon = drop.json()["id"]

        players = [
            httpx.AsyncClient(
                base_url=stack.base_url,
                headers=stack.headers(Role.PLAYER, [room]),
                limits=httpx.Limits(max_connections=50),
                timeout=60,
            )
            for stack in gateways
        ]

        async def claims(player: httpx.AsyncClient, users: list[str]) -> list[tuple[str, int]]:
            return [(user, (await claim(player, room, coupon, user)).status_code) for user in users]

        users = [f"viewer-{i}" for i in range(600)]
        answered = await asyncio.gather(*(claims(players[i % 2], users[i::40]) for i in range(40)))
        for player in players:
            await player.aclose()

        statuses = Counter(status for batch in answered for _, status in batch)
        assert statuses == {201: 50, 409: 550}, statuses
        winners = {user for batch in answered for user, status in batch if status == 201}
        detail = (await admin.get(f"/v1/rooms/{room}/coupons/{coupon}")).json()
        assert (detail["claimed"], detail["remaining"]) == (50, 0)

    stack = gateways[0]

    async def ledger_full() -> bool:
        return len(await ledger_rows(stack, coupon)) == 50

    await wait_for(ledger_full, timeout=30)
    rows = await ledger_rows(stack, coupon)
    assert [row["ordinal"] for row in rows] == list(range(1, 51))
    assert {row["user_id"] for row in rows} == winners


async def test_a_burst_past_the_connection_bound_waits_for_free_connections(
    cluster: list[ClusterNode],
) -> None:
    """As with a single server: more commands at once than connections allowed wait their
    turn (redis-py's cluster client alone raises MaxConnectionsError)."""
    settings = Settings(
        redis_url=cluster[0].url, redis_cluster=True, redis_max_connections=3, secret="s" * 48
    )
    client = open_redis(settings, cluster[0].url)
    room = room_on(cluster[1])
    keys = RoomKeys(room)
    try:

        async def blocking_read() -> object:
            # Holds its connection for the whole block, like a console reader.
            return await client.xread({keys.events: "$"}, block=200)

        async def pipelined(n: int) -> list[object]:
            async with client.pipeline() as pipe:
                pipe.hset(keys.meta, f"f{n}", n)
                pipe.hget(keys.meta, f"f{n}")
                return await pipe.execute()

        reads, counts, pipelines = await asyncio.gather(
            asyncio.gather(*(blocking_read() for _ in range(8))),
            asyncio.gather(*(client.incr(keys.pin) for _ in range(40))),
            asyncio.gather(*(pipelined(n) for n in range(20))),
        )
        assert not any(reads)  # nothing appended: each read timed out
        assert sorted(counts) == list(range(1, 41))
        assert pipelines == [[1, str(n).encode()] for n in range(20)]
    finally:
        await client.delete(keys.meta, keys.pin)
        await client.aclose()
