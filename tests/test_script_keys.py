"""Every key a Lua script touches is one it declared in KEYS.

Redis Cluster routes a script by its declared keys and requires that it touch no other (a key
built inside the script may live on another shard, or be missed by a resharding). Redis
itself only enforces this at cluster boundaries, so the check here watches a live: while a
room goes through chat, likes, orders, a coupon drop with claims, retries and a redemption,
and consoles follow it, MONITOR shows every script call with its KEYS, followed by each
command the script ran; each such command's keys (COMMAND GETKEYS) must be among them.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import httpx
from redis.asyncio import Redis
from redis.asyncio.client import Monitor

from tests.conftest import Stack, chat, open_console, wait_for
from tests.test_coupons import claim, drop, order


async def _watch(monitor: Monitor, seen: list[tuple[str, str]], ready: asyncio.Event) -> None:
    async with monitor:
        ready.set()
        while True:
            command = await monitor.next_command()
            seen.append((command["client_type"], command["command"]))


async def _undeclared(redis: Redis, seen: list[tuple[str, str]]) -> dict[str, set[str]]:
    """Per script (its sha), the keys it touched but did not declare."""
    found: dict[str, set[str]] = defaultdict(set)
    calls = 0
    declared: set[str] | None = None
    sha = ""
    for client, command in seen:
        words = command.split(" ")
        if client != "lua":
            declared = None
            if words[0].upper() in ("EVALSHA", "EVALSHA_RO"):
                sha, count = words[1], int(words[2])
                declared = set(words[3 : 3 + count])
                calls += 1
            continue
        assert declared is not None, f"a script command with no EVALSHA before it: {command}"
        keys = await redis.command_getkeys(*words)
        touched = {key.decode() if isinstance(key, bytes) else key for key in keys}
        if touched - declared:
            found[sha] |= touched - declared
    assert calls > 20, f"only {calls} script calls seen: the check watched too little"
    return found


async def test_scripts_touch_only_the_keys_they_declare(
    stack: Stack, admin: httpx.AsyncClient, room: str, redis: Redis
) -> None:
    seen: list[tuple[str, str]] = []
    ready = asyncio.Event()
    watcher = asyncio.create_task(_watch(redis.monitor(), seen, ready))
    await ready.wait()
    try:
        console = await open_console(stack, room)
        events = f"/v1/rooms/{room}/events"
        newcomers = (await drop(admin, room, audience="new", quantity=5))["id"]
        for_all = (await drop(admin, room, quantity=5, min_spend=0))["id"]
        arrivals = [
            {"type": "enter", "user": {"id": "rookie", "new": True}},
            {"type": "follow", "user": {"id": "fan"}},
            {"type": "like", "user": {"id": "fan"}, "count": 20},
            chat("口红多少钱", user="rookie"),
            chat("1号链接还有吗", user="fan"),
        ]
        assert (await admin.post(events, json=arrivals)).status_code == 202

        async def rookie_flagged() -> bool:
            return (await claim(admin, room, newcomers, "rookie", "k-1")).status_code == 201

        await wait_for(rookie_flagged, timeout=15)
        again = await claim(admin, room, newcomers, "rookie", "k-1")  # a retry
        granted = (await claim(admin, room, for_all, "fan")).json()
        assert again.status_code == 201
        sale = order("fan", "o-1", 19900, granted["code"])
        assert (await admin.post(events, json=sale)).status_code == 202
        assert (await admin.post(f"/v1/rooms/{room}/coupons/{for_all}/stop")).status_code == 200

        async def redeemed() -> bool:
            detail = (await admin.get(f"/v1/rooms/{room}/coupons/{for_all}")).json()
            return bool(detail["redeemed"] == 1)

        await wait_for(redeemed, timeout=20)
        await console.next_of("stats")
        await console.socket.close()
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    assert await _undeclared(redis, seen) == {}
