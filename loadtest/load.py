"""Ingest load: REST batches and WebSocket frames, counted from the gateway's answers.

The load is callback-driven (see ``wire``): an answer arriving sends that connection's next
request or frame from inside ``data_received``, so a client process costs a few microseconds
per answer and the gateway, not the client, sets the pace.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class IngestLoad:
    host: str
    port: int
    path: str  # POST /v1/rooms/R/events, or the socket's /v1/rooms/R/ingest?token=...
    token: str
    rest: bool
    payloads: tuple[bytes, ...]  # bodies or frames; each connection sends them in turn
    events_per_payload: int
    connections: int
    in_flight: int  # per connection; HTTP/1.1 without pipelining allows one
    window: Window


@dataclass
class LoadResult:
    accepted_total: int = 0
    accepted_in_window: int = 0
    answers_in_window: int = 0  # acks or HTTP answers
    duplicates: int = 0
    rejected: int = 0
    error_count: int = 0
    errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < _MAX_ERRORS_KEPT:
            self.errors.append(text)


class _Flow:
    """What all connections of a job share: the counts, and whether to keep sending."""

    def __init__(self, result: LoadResult) -> None:
        self.result = result
        self.start = self.end = 0.0
        self.running = False
        self.outstanding = 0
        self.drained: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def answer(self, accepted: int, duplicates: int, rejected: int) -> None:
        result = self.result
        result.accepted_total += accepted
        result.duplicates += duplicates
        result.rejected += rejected
        if self.start <= time.time() < self.end:
            result.accepted_in_window += accepted
            result.answers_in_window += 1

    def settle(self, count: int) -> None:
        self.outstanding -= count
        if not self.running and self.outstanding == 0 and not self.drained.done():
            self.drained.set_result(None)


class _Feeder:
    """One connection: sends its next payload the moment an answer comes back."""

    __slots__ = ("events", "expected", "flow", "outstanding", "payloads", "turn", "write")

    def __init__(
        self, flow: _Flow, payloads: tuple[bytes, ...], first: int, events: int, expected: bytes
    ) -> None:
        self.flow = flow
        self.payloads = payloads
        self.turn = first  # which payload goes next
        self.events = events
        self.expected = expected  # the answer to a clean payload; anything else is parsed
        self.outstanding = 0
        self.write: Callable[[bytes], None] | None = None

    def send(self) -> None:
        assert self.write is not None
        self.outstanding += 1
        self.flow.outstanding += 1
        self.write(self.payloads[self.turn % len(self.payloads)])
        self.turn += 1

    def on_frame(self, body: bytes) -> None:
        flow = self.flow
        if body == self.expected:
            flow.answer(self.events, 0, 0)
        else:
            try:
                answer = orjson.loads(body)
                flow.answer(answer["accepted"], answer["duplicates"], len(answer["rejected"]))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                flow.result.error(body[:200].decode(errors="replace"))
        self._next()

    def on_response(self, status: int, body: bytes) -> None:
        if status == 202:
            self.on_frame(body)
        else:
            self.flow.result.error(f"HTTP {status}: {body[:200].decode(errors='replace')}")
            self._next()

    def _next(self) -> None:
        self.outstanding -= 1
        if self.flow.running:
            self.send()
        self.flow.settle(1)

    def on_closed(self, closed: asyncio.Future[int]) -> None:
        if self.flow.running or self.outstanding:
            self.flow.result.error(f"connection closed (code {closed.result()})")
        lost, self.outstanding = self.outstanding, 0
        self.flow.settle(lost)


def ingest_load(load: IngestLoad) -> LoadResult:
    return pool.run(_ingest_load(load))


async def _ingest_load(load: IngestLoad) -> LoadResult:
    assert load.in_flight == 1 or not load.rest, "HTTP/1.1 answers one request at a time"
    result = LoadResult()
    flow = _Flow(result)
    events = load.events_per_payload
    ack = b'{"accepted":%d,"duplicates":0,"rejected":[]}' % events
    encoded = tuple(
        wire.encode_post(load.host, load.port, load.path, load.token, payload)
        if load.rest
        else wire.encode_frame(payload)
        for payload in load.payloads
    )
    expected = ack if load.rest else b'{"type":"ack",' + ack[1:]
    feeders = [_Feeder(flow, encoded, i, events, expected) for i in range(load.connections)]
    clients = await pool.connect_each(load.host, load.port, load.path, feeders, rest=load.rest)
    for feeder, client in zip(feeders, clients, strict=True):
        feeder.write = client.send
        client.closed.add_done_callback(feeder.on_closed)
    go = await pool.ready_then_go()
    flow.start, flow.end = load.window.bounds(go)
    flow.running = True
    for feeder in feeders:
        for _ in range(load.in_flight):
            feeder.send()
    await pool.sleep_until(flow.end)
    flow.running = False
    flow.settle(0)
    try:
        await asyncio.wait_for(asyncio.shield(flow.drained), _DRAIN_TIMEOUT_S)
    except TimeoutError:
        result.error(f"{flow.outstanding} answers still missing {_DRAIN_TIMEOUT_S:.0f} s after")
    for client in clients:
        client.close()
    return result
