"""Ingest load: REST batches and WebSocket frames, counted from the gateway's answers.

The socket load is callback-driven (see ``wire``): an ack arriving sends that connection's next
frame from inside ``data_received``, so a client process costs a few microseconds per frame and
the gateway, not the client, sets the pace.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
import orjson

from loadtest import pool, wire

_DRAIN_TIMEOUT_S = 30.0
_MAX_ERRORS_KEPT = 5


@dataclass(frozen=True)
class Window:
    """Load runs for warmup + duration; only what completes within the duration counts."""

    warmup_s: float
    duration_s: float

    def bounds(self, go: float) -> tuple[float, float]:
        return go + self.warmup_s, go + self.warmup_s + self.duration_s


@dataclass
class LoadResult:
    accepted_total: int = 0
    accepted_in_window: int = 0
    answers_in_window: int = 0  # acks or HTTP answers
    duplicates: int = 0
    rejected: int = 0
    error_count: int = 0
    errors: list[str] = field(default_factory=list)
    cpu_s_in_window: float = 0.0

    def error(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < _MAX_ERRORS_KEPT:
            self.errors.append(text)


class _Tally:
    """Counts answers; those arriving inside the window also count towards the rate."""

    def __init__(self, result: LoadResult, start: float, end: float) -> None:
        self.result = result
        self.start = start
        self.end = end

    def answer(self, accepted: int, duplicates: int, rejected: int) -> None:
        result = self.result
        result.accepted_total += accepted
        result.duplicates += duplicates
        result.rejected += rejected
        if self.start <= time.time() < self.end:
            result.accepted_in_window += accepted
            result.answers_in_window += 1

    def answer_json(self, body: bytes) -> None:
        try:
            answer = orjson.loads(body)
            self.answer(answer["accepted"], answer["duplicates"], len(answer["rejected"]))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.result.error(body[:200].decode(errors="replace"))


async def _measure_cpu(result: LoadResult, start: float, end: float) -> None:
    await pool.sleep_until(start)
    before = time.process_time()
    await pool.sleep_until(end)
    result.cpu_s_in_window = time.process_time() - before


# ---------------------------------------------------------------------------------------------
# REST ingest


@dataclass(frozen=True)
class RestLoad:
    base_url: str
    path: str
    token: str
    body: bytes
    connections: int
    window: Window


def rest_load(load: RestLoad) -> LoadResult:
    return pool.run(_rest_load(load))


async def _rest_load(load: RestLoad) -> LoadResult:
    result = LoadResult()
    limits = httpx.Limits(
        max_connections=load.connections, max_keepalive_connections=load.connections
    )
    headers = {"authorization": f"Bearer {load.token}", "content-type": "application/json"}
    async with httpx.AsyncClient(
        base_url=load.base_url, headers=headers, limits=limits, timeout=60.0
    ) as client:
        # Open the keep-alive connections before the start, not inside the window.
        await asyncio.gather(*(client.get("/healthz") for _ in range(load.connections)))
        go = await pool.ready_then_go()
        start, end = load.window.bounds(go)
        tally = _Tally(result, start, end)

        async def post_until_end() -> None:
            while time.time() < end:
                response = await client.post(load.path, content=load.body)
                if response.status_code == 202:
                    tally.answer_json(response.content)
                else:
                    result.error(f"HTTP {response.status_code}: {response.text[:200]}")

        await asyncio.gather(
            _measure_cpu(result, start, end),
            *(post_until_end() for _ in range(load.connections)),
        )
    return result


# ---------------------------------------------------------------------------------------------
# WebSocket ingest


@dataclass(frozen=True)
class SocketLoad:
    host: str
    port: int
    path: str
    payloads: tuple[bytes, ...]  # cycled over the connections
    events_per_frame: int
    connections: int
    in_flight: int  # frames each connection keeps unanswered
    window: Window


class _Flow:
    def __init__(self, tally: _Tally) -> None:
        self.tally = tally
        self.flowning = False
        self.outstanding = 0
        self.drained: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def settle(self, count: int) -> None:
        self.outstanding -= count
        if not self.flowning and self.outstanding == 0 and not self.drained.done():
            self.drained.set_result(None)


class _Feeder:
    """One ingest socket: sends its next frame the moment an ack comes back."""

    __slots__ = ("client", "events", "expected_ack", "frame", "flow", "outstanding")

    def __init__(self, flow: _Flow, frame: bytes, events: int) -> None:
        self.flow = flow
        self.frame = frame
        self.events = events
        # What the gateway answers for a clean frame; anything else is parsed.
        self.expected_ack = b'{"type":"ack","accepted":%d,"duplicates":0,"rejected":[]}' % events
        self.outstanding = 0
        self.client: wire.WsClient | None = None

    def send(self) -> None:
        assert self.client is not None
        self.outstanding += 1
        self.flow.outstanding += 1
        self.client.send(self.frame)

    def on_message(self, payload: bytes) -> None:
        flow = self.flow
        if payload == self.expected_ack:
            flow.tally.answer(self.events, 0, 0)
        else:
            flow.tally.answer_json(payload)
        self.outstanding -= 1
        if flow.running:
            self.send()
        flow.settle(1)

    def on_closed(self, code: int) -> None:
        if self.flow.running or self.outstanding:
            self.flow.tally.result.error(f"socket closed with code {code}")
        lost, self.outstanding = self.outstanding, 0
        self.flow.settle(lost)


def socket_load(load: SocketLoad) -> LoadResult:
    return pool.run(_socket_load(load))


async def _socket_load(load: SocketLoad) -> LoadResult:
    result = LoadResult()
    flow = _Flow(_Tally(result, 0.0, 0.0))
    feeders = [
        _Feeder(flow, wire.encode_frame(load.payloads[i % len(load.payloads)]), load.events_per_frame)
        for i in range(load.connections)
    ]
    clients = await pool.connect_all(
        load.host, load.port, [load.path] * load.connections, [f.on_message for f in feeders]
    )
    for feeder, client in zip(feeders, clients, strict=True):
        feeder.client = client
        client.closed.add_done_callback(
            lambda closed, feeder=feeder: feeder.on_closed(closed.result())
        )
    go = await pool.ready_then_go()
    start, end = load.window.bounds(go)
    flow.tally.start, flow.tally.end = start, end
    flow.running = True
    for feeder in feeders:
        for _ in range(load.in_flight):
            feeder.send()
    await _measure_cpu(result, start, end)
    flow.running = False
    flow.settle(0)
    try:
        await asyncio.wait_for(asyncio.shield(flow.drained), _DRAIN_TIMEOUT_S)
    except TimeoutError:
        result.error(f"{flow.outstanding} frames still unanswered {_DRAIN_TIMEOUT_S:.0f} s after")
    for client in clients:
        client.close()
    return result
