"""The console stream: live delivery, resume with since, gaps, ping, slow consumers."""

from __future__ import annotations

import asyncio
import base64
import gc
import os
import socket
import struct
from typing import Any

import httpx
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from livectl.auth.tokens import Role
from livectl.bus.publish import Message, Publisher
from livectl.config import Settings
from livectl.console.snapshot import console_snapshot, live_snapshot
from livectl.kit import codec
from livectl.resources import Resources
from tests.conftest import (
    Stack,
    chat,
    free_port,
    open_console,
    stop_processes,
    wait_for,
    wait_ready,
)


async def post_chats(stack: Stack, room: str, texts: list[str]) -> None:
    async with httpx.AsyncClient(
        base_url=stack.base_url, headers=stack.headers(Role.INGEST, [room])
    ) as client:
        for start in range(0, len(texts), 200):
            answer = await client.post(
                f"/v1/rooms/{room}/events", json=[chat(t) for t in texts[start : start + 200]]
            )
            assert answer.status_code == 202


async def test_first_message_is_a_snapshot_of_the_room(
    stack: Stack, room: str, admin: httpx.AsyncClient
) -> None:
    await admin.post(f"/v1/rooms/{room}/products/sku-2/pin")
    console = await open_console(stack, room)
    snapshot = await console.next()
    assert snapshot["type"] == "snapshot"
    assert snapshot["data"]["room"]["id"] == room
    assert snapshot["data"]["room"]["status"] == "live"
    assert snapshot["data"]["pinned"] == "sku-2"
    # Products come ranked: the pinned one first, the rest in the room's order (no signals).
    assert [p["id"] for p in snapshot["data"]["products"]] == ["sku-2", "sku-1", "sku-3"]
    assert snapshot["data"]["products"][0]["reasons"] == ["pinned now"]
    assert snapshot["data"]["recommended"] == "sku-1"
    assert snapshot["data"]["stats"]["comments"] == 0
    await console.socket.close()


async def test_a_snapshot_leaves_no_cyclic_garbage(resources: Resources, room: str) -> None:
    # The gateway runs its collector's young passes rarely (livectl.app): garbage that only the
    # collector frees would then pile up with every console that connects.
    for snapshot in (console_snapshot, live_snapshot):
        await snapshot(resources, room)  # first use: imports, caches, pooled connections
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(20):
            for snapshot in (console_snapshot, live_snapshot):
                await snapshot(resources, room)
        gc.collect()
        left = sorted({f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []


async def test_chat_posted_over_rest_reaches_every_console(stack: Stack, room: str) -> None:
    consoles = [await open_console(stack, room, batch=batch) for batch in (True, False)]
    for console in consoles:
        assert (await console.next())["type"] == "snapshot"
    await post_chats(stack, room, ["这个多少钱", "上车上车"])
    for console in consoles:
        messages = await console.collect(2)
        assert [m["data"]["text"] for m in messages] == ["这个多少钱", "上车上车"]
        assert messages[1]["seq"] == messages[0]["seq"] + 1
        assert messages[0]["data"]["user"]["id"] == "u1"
        assert messages[0]["data"]["hidden"] is False
        await console.socket.close()


async def test_a_browsers_compression_offer_is_declined(stack: Stack, room: str) -> None:
    """Every browser offers permessage-deflate; accepted, each console would hold zlib
    contexts (about 20 KiB) for fan-out frames that are shared and never compressed."""
    console = await open_console(stack, room)
    request, response = console.socket.request, console.socket.response
    assert request is not None
    assert response is not None
    assert request.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
    assert "Sec-WebSocket-Extensions" not in response.headers
    assert (await console.next())["type"] == "snapshot"
    await post_chats(stack, room, ["有链接吗"])
    assert [m["data"]["text"] for m in await console.collect(1)] == ["有链接吗"]
    await console.socket.close()


async def test_chat_sent_over_the_ingest_socket_reaches_the_console(
    stack: Stack, room: str
) -> None:
    console = await open_console(stack, room)
    await console.next_of("snapshot")
    url = f"{stack.ws_url}/v1/rooms/{room}/ingest?token={stack.token(Role.INGEST, [room])}"
    async with connect(url) as ingest:
        await ingest.send(codec.dumps_str(chat("from the socket", event_id="ws-1")))
        await ingest.recv()
    message = await console.next_of("chat")
    assert message["data"]["text"] == "from the socket"
    assert message["data"]["event_id"] == "ws-1"
    await console.socket.close()


async def test_pin_and_unpin_reach_console_and_live_channel(
    stack: Stack, room: str, admin: httpx.AsyncClient
) -> None:
    console = await open_console(stack, room)
    live = await open_console(stack, room, role=Role.PLAYER, channel="live")
    assert (await live.next())["type"] == "snapshot"
    assert (await admin.post(f"/v1/rooms/{room}/products/sku-3/pin")).json() == {
        "product_id": "sku-3"
    }
    assert (await console.next_of("pin"))["data"] == {"product_id": "sku-3"}
    assert (await live.next_of("pin"))["data"] == {"product_id": "sku-3"}
    assert (await admin.delete(f"/v1/rooms/{room}/products/sku-3/pin")).json() == {
        "product_id": None
    }
    assert (await console.next_of("pin"))["data"] == {"product_id": None}
    # The live channel is the viewer-safe subset: chat never reaches it.
    await post_chats(stack, room, ["not for viewers"])
    assert (await live.next_of("pin"))["data"] == {"product_id": None}
    await console.next_of("chat")
    await asyncio.sleep(0.3)
    assert live.socket.protocol.events_received() == []
    for client in (console, live):
        await client.socket.close()


async def test_reconnect_with_since_gets_every_missed_message_in_order_once(
    stack: Stack, room: str
) -> None:
    console = await open_console(stack, room)
    await console.next_of("snapshot")
    await post_chats(stack, room, ["a", "b"])
    seen = await console.collect(2)
    await console.socket.close()

    await post_chats(stack, room, [f"missed {i}" for i in range(30)])
    resumed = await open_console(stack, room, since=seen[-1]["seq"])
    await post_chats(stack, room, ["live after resume"])
    # Every message after `since` (stats and ranking pushes between the chats too), in order,
    # none missing, none twice.
    messages = [await resumed.next()]
    while messages[-1]["data"].get("text") != "live after resume":
        messages.append(await resumed.next())
    chats = [m["data"]["text"] for m in messages if m["type"] == "chat"]
    assert chats == [f"missed {i}" for i in range(30)] + ["live after resume"]
    since = seen[-1]["seq"]
    assert [m["seq"] for m in messages] == list(range(since + 1, since + 1 + len(messages)))
    await resumed.socket.close()


async def test_a_gap_too_old_to_fill_gives_reset_then_snapshot(stack: Stack, room: str) -> None:
    console = await open_console(stack, room)
    first_seq = (await console.next_of("snapshot"))["seq"]
    await console.socket.close()
    # The test gateway keeps at least 100 messages and those of the current second (its
    # clock has one-second steps): 300 now and 300 a second later push the early ones out.
    await post_chats(stack, room, [f"flood {i}" for i in range(300)])
    await asyncio.sleep(1.1)
    await post_chats(stack, room, [f"flood {i}" for i in range(300, 600)])
    await wait_for(lambda: seq_at_least(stack, room, first_seq + 600))

    resumed = await open_console(stack, room, since=first_seq)
    reset = await resumed.next()
    assert reset["type"] == "reset"
    assert reset["data"] == {"reason": "history_gap"}
    snapshot = await resumed.next()
    assert snapshot["type"] == "snapshot"
    assert snapshot["seq"] >= first_seq + 600
    await resumed.socket.close()


async def seq_at_least(stack: Stack, room: str, seq: int) -> bool:
    console = await open_console(stack, room)
    try:
        return int((await console.next_of("snapshot"))["seq"]) >= seq
    finally:
        await console.socket.close()


async def test_since_ahead_of_the_stream_gives_reset(stack: Stack, room: str) -> None:
    resumed = await open_console(stack, room, since=10_000_000)
    assert (await resumed.next())["data"] == {"reason": "seq_ahead"}
    assert (await resumed.next())["type"] == "snapshot"
    await resumed.socket.close()


async def test_ping_gets_pong_and_anything_else_an_error(stack: Stack, room: str) -> None:
    console = await open_console(stack, room)
    await console.next_of("snapshot")
    await console.socket.send('{"type": "ping"}')
    await console.next_of("pong")
    await console.socket.send("hello?")
    error = await console.next_of("error")
    assert error["error"] == "unknown_message"
    await console.socket.send('{"type": "ping"}')
    await console.next_of("pong")
    await console.socket.close()


def _raw_console(stack: Stack, room: str) -> socket.socket:
    """A console that completes the handshake and then never reads a byte."""
    host, port = stack.base_url.removeprefix("http://").split(":")
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect, to cap the window
    raw.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    token = stack.token(Role.HOST, [room])
    raw.sendall(
        (
            f"GET /v1/rooms/{room}/console?batch=1&token={token} HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    assert b" 101 " in raw.recv(1024).split(b"\r\n")[0]
    return raw


def _close_code(raw: socket.socket) -> int | None:
    """Read what the server left in the socket until it hangs up; the close frame's code if
    it sent one, None if it cut the connection. Fails if the server never hangs up."""
    raw.settimeout(10)
    data = b""
    try:
        while chunk := raw.recv(65536):
            data += chunk
    except ConnectionResetError:
        return None
    # The close frame is the last thing sent: opcode 0x88, a short length, then code + reason.
    for start in range(len(data) - 4, max(len(data) - 130, -1), -1):
        if data[start] == 0x88 and data[start + 1] == len(data) - start - 2:
            code: int = struct.unpack("!H", data[start + 2 : start + 4])[0]
            return code
    return None


async def test_a_console_that_never_reads_is_closed_with_4008_and_others_keep_up(
    stack: Stack, room: str
) -> None:
    stalled = _raw_console(stack, room)
    reader = await open_console(stack, room)
    await reader.next_of("snapshot")
    # ~7 MB: more than the server's socket send buffer can absorb (up to 4 MB here). Each
    # 200 are posted once the reader has the 200 before: a burst larger than its queue could
    # otherwise close the reader as too slow too, when this test process falls behind.
    texts = [f"{i:05d} " + "弹幕" * 200 for i in range(6000)]
    received: list[dict[str, Any]] = []
    for start in range(0, len(texts), 200):
        await post_chats(stack, room, texts[start : start + 200])
        received += await reader.collect(200, timeout=30)
    assert [m["data"]["text"][:5] for m in received] == [f"{i:05d}" for i in range(6000)]

    async with httpx.AsyncClient(base_url=stack.base_url) as client:
        metrics = (await client.get("/metrics")).text
    overflowed = next(
        line
        for line in metrics.splitlines()
        if line.startswith("livectl_sockets_overflowed_total ")
    )
    assert float(overflowed.split()[1]) >= 1
    code = await asyncio.to_thread(_close_code, stalled)
    assert code in (4008, None)  # 4008 if the close frame fit in; cut off (reset) if not
    stalled.close()
    await reader.socket.close()


async def test_staff_only_messages_never_reach_the_host_view(
    stack: Stack, room: str, redis: Redis
) -> None:
    host = await open_console(stack, room, role=Role.HOST)
    assistant = await open_console(stack, room, role=Role.ASSISTANT)
    start = (await host.next_of("snapshot"))["seq"]
    await assistant.next_of("snapshot")
    publisher = Publisher(redis, Settings(secret="s" * 48))
    await publisher.publish(
        room,
        [
            Message("chat", {"text": "for staff"}, staff_only=True),
            Message("chat", {"text": "for all"}),
        ],
    )
    assert [m["data"]["text"] for m in await assistant.collect(2)] == ["for staff", "for all"]
    assert (await host.next_of("chat"))["data"]["text"] == "for all"

    resumed_host = await open_console(stack, room, role=Role.HOST, since=start)
    resumed_assistant = await open_console(stack, room, role=Role.ASSISTANT, since=start)
    assert [m["data"]["text"] for m in await resumed_assistant.collect(2)] == [
        "for staff",
        "for all",
    ]
    assert (await resumed_host.next_of("chat"))["data"]["text"] == "for all"
    for console in (host, assistant, resumed_host, resumed_assistant):
        await console.socket.close()


async def test_a_burst_of_consoles_past_the_redis_pool_waits_its_turn_instead_of_failing(
    stack: Stack, room: str
) -> None:
    # A gateway allowed two Redis connections, hit by sixty consoles at once: each must get
    # its snapshot (waiting for a free connection), none a 500.
    port = free_port()
    gateway = stack.spawn(
        "api-small-pool",
        "api",
        env={**stack.env, "LIVECTL_PORT": str(port), "LIVECTL_REDIS_MAX_CONNECTIONS": "2"},
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, [gateway])
        token = stack.token(Role.HOST, [room])
        url = f"ws://127.0.0.1:{port}/v1/rooms/{room}/console?token={token}"

        async def snapshot_type() -> str:
            async with connect(url) as socket:
                return str(codec.loads(await asyncio.wait_for(socket.recv(), 30))["type"])

        assert await asyncio.gather(*(snapshot_type() for _ in range(60))) == ["snapshot"] * 60
    finally:
        stop_processes([gateway])
