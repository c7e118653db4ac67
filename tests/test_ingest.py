"""Events in over REST and WebSocket: validation, per-event rejection, dedupe, limits."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from livectl.auth.tokens import Role
from livectl.bus.keys import RoomKeys
from livectl.ingest.entries import unpack_entry
from livectl.kit import codec
from tests.conftest import Stack, chat, free_port, stop_processes, unique, wait_ready, xrange


@pytest.fixture
async def ingest(stack: Stack, room: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"{stack.base_url}/v1/rooms/{room}",
        headers=stack.headers(Role.INGEST, [room]),
        timeout=10,
    ) as client:
        yield client


async def stored_events(redis: Redis, room: str) -> list[dict[str, Any]]:
    entries = await xrange(redis, RoomKeys(room).events)
    return [
        item.event
        for entry_id, fields in entries
        for item in unpack_entry(entry_id.decode(), fields)
    ]


async def test_one_event_and_a_batch_are_stored(
    ingest: httpx.AsyncClient, redis: Redis, room: str
) -> None:
    one = await ingest.post("/events", json=chat("主播好"))
    assert one.status_code == 202
    assert one.json() == {"accepted": 1, "duplicates": 0, "rejected": []}

    batch = [chat(f"第{i}条", user=f"u{i}") for i in range(50)] + [
        {"type": "like", "user": {"id": "u9"}, "count": 30},
        {
            "type": "order",
            "user": {"id": "u9"},
            "product_id": "sku-1",
            "order": {"id": "o-1", "quantity": 2, "amount": 19800},
        },
    ]
    many = await ingest.post("/events", json=batch)
    assert many.json() == {"accepted": 52, "duplicates": 0, "rejected": []}

    events = await stored_events(redis, room)
    assert [e.get("text") for e in events if e["type"] == "chat"] == ["主播好"] + [
        f"第{i}条" for i in range(50)
    ]
    order = next(e for e in events if e["type"] == "order")
    assert order["order"] == {"id": "o-1", "quantity": 2, "amount": 19800}
    assert all(isinstance(e["ts"], int) and e["ts"] > 1_700_000_000_000 for e in events)


async def test_a_bad_event_rejects_itself_not_the_batch(
    ingest: httpx.AsyncClient, redis: Redis, room: str
) -> None:
    batch: list[Any] = [
        chat("ok 0"),
        chat("x" * 501),
        {"type": "boom", "user": {"id": "u"}},
        {"type": "order", "user": {"id": "u"}, "order": {"id": "o", "quantity": 1, "amount": 99.5}},
        {"type": "chat", "user": {"id": "has space"}, "text": "hi"},
        {"user": {"id": "u"}, "text": "no type"},
        "not an object",
        {"type": "like", "user": {"id": "u"}, "count": 0},
        {"type": "chat", "user": {"id": "u"}},
        {"type": "click", "user": {"id": "u"}},
        {"type": "chat", "user": {"id": "u"}, "text": "ts as float", "ts": 1.5},
        chat("ok 1"),
    ]
    answer = await ingest.post("/events", json=batch)
    assert answer.status_code == 202
    body = answer.json()
    assert body["accepted"] == 2
    assert [(r["index"], r["error"]) for r in body["rejected"]] == [
        (1, "text_too_long"),
        (2, "unknown_type"),
        (3, "order_amount_not_integer"),
        (4, "user_id_invalid"),
        (5, "type_missing"),
        (6, "event_not_object"),
        (7, "count_out_of_range"),
        (8, "text_missing"),
        (9, "product_id_missing"),
        (10, "ts_not_integer"),
    ]
    assert all(r["detail"] for r in body["rejected"])
    assert [e["text"] for e in await stored_events(redis, room)] == ["ok 0", "ok 1"]


async def test_the_same_id_is_accepted_once(
    ingest: httpx.AsyncClient, redis: Redis, room: str
) -> None:
    first = await ingest.post(
        "/events", json=[chat("a", event_id="e-1"), chat("b", event_id="e-2")]
    )
    assert first.json()["accepted"] == 2
    again = await ingest.post(
        "/events",
        json=[chat("a", event_id="e-1"), chat("c", event_id="e-3"), chat("c", event_id="e-3")],
    )
    assert again.json() == {"accepted": 1, "duplicates": 2, "rejected": []}
    assert [e["text"] for e in await stored_events(redis, room)] == ["a", "b", "c"]


async def test_concurrent_duplicates_are_accepted_exactly_once(
    ingest: httpx.AsyncClient, redis: Redis, room: str
) -> None:
    answers = await asyncio.gather(
        *(ingest.post("/events", json=chat("same", event_id="dup-1")) for _ in range(20))
    )
    assert sum(a.json()["accepted"] for a in answers) == 1
    assert sum(a.json()["duplicates"] for a in answers) == 19
    assert len(await stored_events(redis, room)) == 1


async def test_metrics_count_what_was_stored_duplicated_and_rejected(
    ingest: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    names = ["accepted", "duplicate", "rejected"]

    async def counts() -> list[float]:
        lines = (await admin.get("/metrics")).text.splitlines()
        return [
            float(line.split()[1])
            for name in names
            for line in lines
            if line.startswith(f"livectl_events_{name}_total ")
        ]

    assert (await ingest.post("/events", json=chat("first", event_id="seen-1"))).status_code == 202
    before = await counts()
    batch = [chat("a"), chat("again", event_id="seen-1"), chat("b"), {"type": "nope"}]
    answer = (await ingest.post("/events", json=batch)).json()
    assert (answer["accepted"], answer["duplicates"], len(answer["rejected"])) == (2, 1, 1)
    after = await counts()
    assert [b - a for a, b in zip(before, after, strict=True)] == [2, 1, 1]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"\xff\xfe", 400, "invalid_json"),
        (b"", 400, "invalid_json"),
        (b"42", 400, "invalid_body"),
        (b"[]", 400, "invalid_body"),
        (codec.dumps([chat("x")] * 1001), 413, "too_many_events"),
        (b"[" + b" " * (1024 * 1024) + b"]", 413, "body_too_large"),
    ],
)
async def test_a_body_that_is_not_a_batch_is_refused_whole(
    ingest: httpx.AsyncClient, redis: Redis, room: str, body: bytes, status: int, error: str
) -> None:
    await ingest.post("/events", json=chat("kept"))
    answer = await ingest.post(
        "/events", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == status
    assert answer.json()["error"] == error
    assert answer.json()["detail"]
    assert [e["text"] for e in await stored_events(redis, room)] == ["kept"]


async def test_a_chunked_body_is_cut_off_at_the_limit(ingest: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"["
        for _ in range(300):
            yield b" " * 4096  # 1.2 MiB in all, with no Content-Length to go by

    answer = await ingest.post("/events", content=chunks())
    assert answer.status_code == 413
    assert answer.json()["error"] == "body_too_large"


async def test_events_for_an_unknown_room_are_refused(stack: Stack) -> None:
    room = unique("nowhere")
    async with httpx.AsyncClient(base_url=stack.base_url) as client:
        answer = await client.post(
            f"/v1/rooms/{room}/events", json=chat("x"), headers=stack.headers(Role.INGEST, [room])
        )
    assert answer.status_code == 404
    assert answer.json()["error"] == "room_not_found"


async def test_websocket_ingest_acks_every_frame_and_survives_bad_ones(
    stack: Stack, redis: Redis, room: str
) -> None:
    url = f"{stack.ws_url}/v1/rooms/{room}/ingest?token={stack.token(Role.INGEST, [room])}"
    async with connect(url) as socket:
        await socket.send(codec.dumps_str(chat("one")))
        assert codec.loads(await socket.recv()) == {
            "type": "ack",
            "accepted": 1,
            "duplicates": 0,
            "rejected": [],
        }

        await socket.send("{broken")
        assert codec.loads(await socket.recv())["error"] == "invalid_json"

        await socket.send(b"\x00binary")
        assert codec.loads(await socket.recv())["error"] == "binary_frame"

        await socket.send('["' + "x" * (1024 * 1024 + 10) + '"]')
        assert codec.loads(await socket.recv())["error"] == "frame_too_large"

        await socket.send(
            codec.dumps_str([chat("two"), {"type": "chat", "user": {"id": "u"}, "text": ""}])
        )
        ack = codec.loads(await socket.recv())
        assert ack["accepted"] == 1
        assert ack["rejected"] == [
            {"index": 1, "error": "text_too_short", "detail": ack["rejected"][0]["detail"]}
        ]

    assert [e["text"] for e in await stored_events(redis, room)] == ["one", "two"]


@pytest.fixture(scope="module")
def plain_asgi_server(stack: Stack) -> Iterator[str]:
    """The gateway's app served by uvicorn's own WebSocket protocol, which offers no direct
    frames (kit.frames): its request-and-answer sockets run over plain ASGI messages. Its
    WebSocket base URL."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "livectl.app:create_app", "--factory"]
    command += ["--ws", "websockets-sansio", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=stack.env)
    try:
        wait_ready(f"http://127.0.0.1:{port}", [process])
        yield f"ws://127.0.0.1:{port}"
    finally:
        stop_processes([process])


@pytest.mark.parametrize("server", ["livectl api", "plain ASGI server"])
async def test_frames_sent_back_to_back_are_answered_and_stored_in_order(
    server: str, stack: Stack, redis: Redis, room: str, request: pytest.FixtureRequest
) -> None:
    # The socket does not wait for one frame's ack before taking the next, yet acks come back
    # in frame order and the events are stored in it; bad frames in between keep their place.
    base = stack.ws_url if server == "livectl api" else request.getfixturevalue("plain_asgi_server")
    url = f"{base}/v1/rooms/{room}/ingest?token={stack.token(Role.INGEST, [room])}"
    frames: list[str | bytes] = [
        "{broken" if i % 50 == 7 else codec.dumps_str([chat(f"m{i}")] * (1 + i % 3))
        for i in range(300)
    ]
    frames[123] = b"\x00binary"
    async with connect(url) as socket:
        for frame in frames:
            await socket.send(frame)
        answers = [codec.loads(await socket.recv()) for _ in frames]
    refusals = {"{broken": "invalid_json", b"\x00binary": "binary_frame"}
    expected = [
        {"error": refusals[frame]} if frame in refusals else {"accepted": 1 + i % 3}
        for i, frame in enumerate(frames)
    ]
    assert [{k: a[k] for k in e} for a, e in zip(answers, expected, strict=True)] == expected
    stored = [e["text"] for e in await stored_events(redis, room)]
    assert stored == [
        f"m{i}" for i, frame in enumerate(frames) if frame not in refusals for _ in range(1 + i % 3)
    ]


async def test_frames_answered_as_read_and_frames_that_wait_keep_one_order(
    stack: Stack, redis: Redis, room: str
) -> None:
    # A frame is answered as it is read unless this gateway is due to share its count of the
    # token's events (every 50 ms) or to look at the room again (every second): that frame
    # waits for a task, and the frames read meanwhile wait behind it. 2.5 s of bursts cross
    # both many times.
    url = f"{stack.ws_url}/v1/rooms/{room}/ingest?token={stack.token(Role.INGEST, [room])}"
    sizes = [1 + i % 3 for i in range(500)]
    async with connect(url) as socket:

        async def read_acks() -> list[int]:
            return [codec.loads(await socket.recv())["accepted"] for _ in sizes]

        reading = asyncio.ensure_future(read_acks())
        for i, size in enumerate(sizes):  # bursts of 10 frames, 20 a second
            await socket.send(codec.dumps_str([chat(f"m{i}-{k}") for k in range(size)]))
            if i % 10 == 9:
                await asyncio.sleep(0.05)
        assert await asyncio.wait_for(reading, 10) == sizes
    stored = [e["text"] for e in await stored_events(redis, room)]
    assert stored == [f"m{i}-{k}" for i, size in enumerate(sizes) for k in range(size)]


async def test_a_frame_past_the_protocol_cap_closes_only_that_socket(
    stack: Stack, room: str
) -> None:
    url = f"{stack.ws_url}/v1/rooms/{room}/ingest?token={stack.token(Role.INGEST, [room])}"
    async with connect(url, max_size=None) as bystander, connect(url, max_size=None) as hostile:
        # The gateway fails the connection from the frame's header: the rest of the frame
        # may still be on its way when the close comes back.
        with contextlib.suppress(ConnectionClosed):
            await hostile.send("x" * (5 * 1024 * 1024))
        await hostile.wait_closed()
        assert hostile.close_code == 1009
        await bystander.send(codec.dumps_str(chat("still here")))
        assert codec.loads(await bystander.recv())["accepted"] == 1


async def open_raw_socket(
    stack: Stack, room: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """An ingest socket past its handshake, as bytes: nothing reads or writes but the test."""
    port = int(stack.base_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    path = f"/v1/rooms/{room}/ingest?token={stack.token(Role.INGEST, [room])}"
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    headers = "Host: livectl\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    headers += f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    writer.write(f"GET {path} HTTP/1.1\r\n{headers}\r\n".encode())
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    return reader, writer


def client_frame(
    payload: bytes, opcode: int = 0x1, *, fin: bool = True, mask: bool = True
) -> bytes:
    """One frame as a client sends it (RFC 6455 5.2), masked unless told otherwise."""
    length = len(payload)
    if length < 126:
        size = bytes([length])
    elif length < 1 << 16:
        size = bytes([126]) + length.to_bytes(2)
    else:
        size = bytes([127]) + length.to_bytes(8)
    first = bytes([(0x80 if fin else 0) | opcode])
    if not mask:
        return first + size + payload
    key = secrets.token_bytes(4)
    masked = bytes(byte ^ key[i % 4] for i, byte in enumerate(payload))
    return first + bytes([size[0] | 0x80]) + size[1:] + key + masked


async def server_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The next frame the server sent (unmasked, unfragmented): its opcode and payload."""
    first, length = await asyncio.wait_for(reader.readexactly(2), 10)
    if length >= 126:
        length = int.from_bytes(await reader.readexactly(2 if length == 126 else 8))
    return first & 0x0F, await reader.readexactly(length)


async def test_frames_are_read_whole_however_they_arrive(
    stack: Stack, redis: Redis, room: str
) -> None:
    reader, writer = await open_raw_socket(stack, room)
    split = client_frame(codec.dumps(chat("split")))
    for i in range(len(split)):  # one byte at a time: every read ends mid-frame
        writer.write(split[i : i + 1])
        await writer.drain()
        await asyncio.sleep(0.001)
    # Two frames in one write; then a message in three fragments with a ping between them.
    writer.write(client_frame(codec.dumps(chat("one"))) + client_frame(codec.dumps(chat("two"))))
    fragmented = codec.dumps([chat("fragmented")])
    writer.write(client_frame(fragmented[:5], fin=False))
    writer.write(client_frame(b"are you there", 0x9))
    writer.write(client_frame(fragmented[5:20], 0x0, fin=False))
    writer.write(client_frame(fragmented[20:], 0x0))
    # Lengths in 16 and in 64 bits.
    medium = codec.dumps([chat(f"medium{i}") for i in range(3)])
    large = codec.dumps([chat(f"large{i}", user=f"user{i}") for i in range(900)])
    assert 126 <= len(medium) < 1 << 16 <= len(large)
    writer.write(client_frame(medium) + client_frame(large))
    answers = [await server_frame(reader) for _ in range(7)]
    assert (0xA, b"are you there") in answers  # the pong
    acks = [codec.loads(payload) for opcode, payload in answers if opcode == 0x1]
    assert [ack["accepted"] for ack in acks] == [1, 1, 1, 1, 3, 900]
    # A client's frame must be masked: the connection fails with 1002, protocol error.
    writer.write(client_frame(codec.dumps(chat("unmasked")), mask=False))
    opcode, payload = await server_frame(reader)
    assert (opcode, int.from_bytes(payload[:2])) == (0x8, 1002)
    writer.close()
    await writer.wait_closed()
    stored = [e["text"] for e in await stored_events(redis, room)]
    expected = ["split", "one", "two", "fragmented", "medium0", "medium1", "medium2"]
    assert stored == expected + [f"large{i}" for i in range(900)]


async def test_text_that_is_not_utf8_fails_the_connection(
    stack: Stack, redis: Redis, room: str
) -> None:
    # Text frames are parsed undecoded as they are read; one that is not UTF-8 must still fail
    # the connection (RFC 6455 8.1), not be answered as bad JSON.
    reader, writer = await open_raw_socket(stack, room)
    frames = [
        client_frame(codec.dumps(chat("颜色好显白"))),
        client_frame(b"\x00\x01", 0x2),  # binary: refused, and the socket reads on
        client_frame('[{"type": "chat", "text": "显'.encode()[:-1] + b'"}]'),
    ]
    answers = []
    for frame in frames:
        writer.write(frame)
        answers.append(await server_frame(reader))
    writer.close()
    await writer.wait_closed()
    texts = [codec.loads(payload) for opcode, payload in answers[:2]]
    assert [(t["type"], t.get("accepted"), t.get("error")) for t in texts] == [
        ("ack", 1, None),
        ("error", None, "binary_frame"),
    ]
    opcode, payload = answers[2]
    assert (opcode, int.from_bytes(payload[:2])) == (0x8, 1007)
    assert [e["text"] for e in await stored_events(redis, room)] == ["颜色好显白"]


async def test_a_client_not_reading_its_acks_is_held_back_and_loses_nothing(
    stack: Stack, redis: Redis, room: str
) -> None:
    reader, writer = await open_raw_socket(stack, room)
    sent = 0
    # Until the gateway takes no more of its frames: acks fill the socket's buffers (a few MB
    # on Linux), then the gateway stops reading, and then the client's writes stop draining.
    while sent < 1_000_000:
        writer.write(client_frame(codec.dumps(chat(f"s{sent}"))))
        sent += 1
        try:
            await asyncio.wait_for(writer.drain(), 2)
        except TimeoutError:
            break
    assert sent < 1_000_000, "the gateway went on taking frames nobody acknowledged"
    async with connect(
        f"{stack.ws_url}/v1/rooms/{room}/ingest?token={stack.token(Role.INGEST, [room])}"
    ) as bystander:
        await bystander.send(codec.dumps_str(chat("bystander")))
        assert codec.loads(await asyncio.wait_for(bystander.recv(), 5))["accepted"] == 1
    accepted = [codec.loads((await server_frame(reader))[1])["accepted"] for _ in range(sent)]
    writer.close()
    await writer.wait_closed()
    assert accepted == [1] * sent
    stored = [e["text"] for e in await stored_events(redis, room)]
    assert len(stored) == sent + 1
    assert [text for text in stored if text != "bystander"] == [f"s{i}" for i in range(sent)]
