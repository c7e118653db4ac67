"""Consoles for the latency and memory figures, and the paced chat sender they watch.

At 5,000 chat events/s and 200 consoles the consoles receive a million envelopes a second;
decoding each would take more CPU than the gateway gets. A console therefore reads a frame with
C-speed byte searches only: ``count`` of chat envelopes, the first and last event index (the
pacer writes ``lt<index>`` at the start of every text), and the receive time. Events are numbered
in send order and one room's stream is ordered, so a frame holding ``count`` chats from ``first``
to ``last`` with ``last - first + 1 == count`` that starts where the previous one ended carries
exactly those events. Latency is computed afterwards from these (time, first, last) records and
the pacer's send times; any frame that does not fit the pattern is decoded in full and counted
as irregular.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from array import array
from dataclasses import dataclass, field

import orjson

from loadtest import pool, wire

CHAT = b'"type":"chat"'
MARK = b'"text":"lt'
_SNAPSHOT = b'"type":"snapshot"'
_SNAPSHOT_TIMEOUT_S = 60.0
_MAX_ERRORS_KEPT = 5
# Viewers the pacer's events come from, cycled.
_VIEWERS = 5000


def chat_text(index: int) -> str:
    return f"lt{index} 主播这件还有M码吗"


def _index_at(payload: bytes, mark: int) -> int:
    start = mark + len(MARK)
    return int(payload[start : payload.index(b" ", start)])


# ---------------------------------------------------------------------------------------------
# The pacer: chat at a steady rate over one ingest socket


@dataclass(frozen=True)
class Pacer:
    host: str
    port: int
    path: str
    events_per_frame: int
    period_s: float
    duration_s: float
    ack_wait_s: float  # how long to wait for the last acks before closing the socket


@dataclass
class PacerResult:
    send_ns: array[int]  # when frame k (events k*n .. k*n+n-1) was written to the socket
    accepted: int = 0
    max_behind_ms: float = 0.0  # how far the pacer fell behind its schedule
    errors: list[str] = field(default_factory=list)


def pacer(spec: Pacer) -> PacerResult:
    return pool.run(_pacer(spec))


async def _pacer(spec: Pacer) -> PacerResult:
    result = PacerResult(send_ns=array("q"))
    frames = round(spec.duration_s / spec.period_s)
    acks = 0
    all_acked = asyncio.Event()

    def on_ack(payload: bytes) -> None:
        nonlocal acks
        acks += 1
        if acks == frames:
            all_acked.set()
        answer = orjson.loads(payload)
        clean = answer.get("type") == "ack" and not answer["rejected"]
        result.accepted += answer.get("accepted", 0)
        if not clean and len(result.errors) < _MAX_ERRORS_KEPT:
            result.errors.append(payload[:200].decode(errors="replace"))

    # One socket, as a platform bridge would use: it also keeps the events in send order.
    client = await wire.connect(spec.host, spec.port, spec.path, on_ack)
    go = await pool.ready_then_go()
    per_frame = spec.events_per_frame
    for k in range(frames):
        scheduled = go + k * spec.period_s
        await pool.sleep_until(scheduled)
        ts = time.time_ns() // 1_000_000
        first = k * per_frame
        payload = orjson.dumps(
            [
                {
                    "type": "chat",
                    "ts": ts,
                    "user": {"id": f"v{i % _VIEWERS}", "name": f"观众{i % _VIEWERS}"},
                    "text": chat_text(i),
                }
                for i in range(first, first + per_frame)
            ]
        )
        frame = wire.encode_frame(payload)
        sent = time.time_ns()
        result.send_ns.append(sent)
        result.max_behind_ms = max(result.max_behind_ms, (sent / 1e9 - scheduled) * 1000)
        client.send(frame)
    try:
        await asyncio.wait_for(all_acked.wait(), spec.ack_wait_s)
    except TimeoutError:
        result.errors.append(f"{frames - acks} of {frames} frames unanswered")
    client.close()
    return result


# ---------------------------------------------------------------------------------------------
# Consoles that record what arrives


@dataclass(frozen=True)
class Consoles:
    host: str
    port: int
    path: str
    count: int
    expected: int  # events the pacer sends: each console is done once it has them all
    until_s: float  # after the start, when the pacer stops sending
    limit_s: float  # stop at the latest this long after that


@dataclass
class ConsoleResult:
    received: list[int]  # chat envelopes per console
    irregular: list[int]  # frames per console that were out of order, repeated or gapped
    close_codes: list[int]  # consoles the server closed before the end
    # One record per (frame, console): receive time, the first and last event index in it, and
    # when the worker published the first of them (the envelope's ts, ms).
    recv_ns: array[int]
    first: array[int]
    last: array[int]
    published_ms: array[int]


class _Records:
    """What the consoles of one process saw, and whether each has every expected event."""

    def __init__(self, consoles: int, expected: int) -> None:
        self.expected = expected
        self.incomplete = consoles
        self.all_complete = asyncio.Event()
        self.recv_ns: array[int] = array("q")
        self.first: array[int] = array("q")
        self.last: array[int] = array("q")
        self.published_ms: array[int] = array("q")

    def add(self, now_ns: int, first: int, last: int, published_ms: int) -> None:
        self.recv_ns.append(now_ns)
        self.first.append(first)
        self.last.append(last)
        self.published_ms.append(published_ms)


class _Console:
    __slots__ = ("complete", "irregular", "next_index", "received", "records", "snapshot")

    def __init__(self, records: _Records) -> None:
        self.records = records
        self.snapshot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.received = 0
        self.irregular = 0
        self.next_index = 0
        self.complete = False

    def on_message(self, payload: bytes) -> None:
        now = time.time_ns()
        count = payload.count(CHAT)
        if not count:
            if not self.snapshot.done() and _SNAPSHOT in payload[:64]:
                self.snapshot.set_result(None)
            return
        self.received += count
        if not self.complete and self.received >= self.records.expected:
            self.complete = True
            self.records.incomplete -= 1
            if not self.records.incomplete:
                self.records.all_complete.set()
        chat = payload.find(CHAT)
        first = _index_at(payload, payload.find(MARK, chat))
        last = _index_at(payload, payload.rfind(MARK))
        if first == self.next_index and last - first + 1 == count:
            # The envelope is {"seq":..,"type":"chat","ts":T,..}: T follows the type.
            ts = chat + len(CHAT) + len(b',"ts":')
            self.records.add(now, first, last, int(payload[ts : payload.index(b",", ts)]))
            self.next_index = last + 1
            return
        self.irregular += 1
        for line in payload.split(b"\n"):
            envelope = orjson.loads(line)
            if envelope.get("type") == "chat":
                index = int(envelope["data"]["text"][2:].split(" ", 1)[0])
                self.records.add(now, index, index, envelope["ts"])
                self.next_index = max(self.next_index, index + 1)


def consoles(spec: Consoles) -> ConsoleResult:
    return pool.run(_consoles(spec))


async def _consoles(spec: Consoles) -> ConsoleResult:
    records = _Records(spec.count, spec.expected)
    watchers = [_Console(records) for _ in range(spec.count)]
    clients = await pool.connect_all(
        spec.host, spec.port, [spec.path] * spec.count, [w.on_message for w in watchers]
    )
    await asyncio.wait_for(asyncio.gather(*(w.snapshot for w in watchers)), _SNAPSHOT_TIMEOUT_S)
    go = await pool.ready_then_go()
    await pool.sleep_until(go + spec.until_s)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(records.all_complete.wait(), spec.limit_s)
    close_codes = [c.closed.result() for c in clients if c.closed.done()]
    for client in clients:
        client.close()
    return ConsoleResult(
        received=[w.received for w in watchers],
        irregular=[w.irregular for w in watchers],
        close_codes=close_codes,
        recv_ns=records.recv_ns,
        first=records.first,
        last=records.last,
        published_ms=records.published_ms,
    )


# ---------------------------------------------------------------------------------------------
# Idle consoles, held open while the parent measures the gateway's memory


@dataclass(frozen=True)
class IdleConsoles:
    host: str
    port: int
    path: str
    count: int


def idle_consoles(spec: IdleConsoles) -> int:
    """Open the consoles, wait for each snapshot, hold them until the go; return how many
    were still open then."""
    return pool.run(_idle_consoles(spec))


async def _idle_consoles(spec: IdleConsoles) -> int:
    records = _Records(spec.count, expected=0)  # idle: no chat is expected or sent
    watchers = [_Console(records) for _ in range(spec.count)]
    clients = await pool.connect_all(
        spec.host, spec.port, [spec.path] * spec.count, [w.on_message for w in watchers]
    )
    await asyncio.wait_for(asyncio.gather(*(w.snapshot for w in watchers)), _SNAPSHOT_TIMEOUT_S)
    await pool.ready_then_go()
    still_open = sum(not c.closed.done() for c in clients)
    for client in clients:
        client.close()
    return still_open
