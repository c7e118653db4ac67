"""``python -m loadtest fanout``: one room broadcasting to many console sockets on one gateway.

One gateway process (``livectl api --processes 1``), one live room, ``--sockets`` host consoles
(batched frames) spread over client processes of the light ``wire`` client. This process
publishes straight onto the room's console channel (what the workers do, through the same Lua
script), in batches at a fixed rate; each message carries its publish time, and each socket
counts what it receives and when. Figures:

- memory per idle socket: the gateway's RSS with every socket connected and caught up, less
  its RSS before, divided by the sockets;
- deliveries/s: messages received by all sockets, per second from the first publish to the
  last receipt (the publisher's rate caps it: raise ``--rate`` to find the gateway's ceiling);
- broadcast p99: publish to receipt, over every (message, socket) pair;
- the same with a share of sockets that stop reading at the start: they must be closed (4008
  rule) while the others keep their throughput.

The backlog bound and the kernel send buffer are lowered for the run
(``LIVECTL_CONSOLE_QUEUE_FRAMES``, ``LIVECTL_CONSOLE_SEND_BUFFER_BYTES``) so a stalled socket
reaches the bound within seconds at this data rate instead of minutes; the rule is the same.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import secrets
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import orjson
from redis.asyncio import Redis

from livectl.auth.tokens import Role
from livectl.bus.keys import Channel, RoomKeys
from livectl.bus.publish import Message, Publisher
from livectl.config import Settings
from loadtest import pool, report, wire
from loadtest.bench import LATENCY_BUCKET_NS, percentile_ms
from loadtest.pool import ClientPool
from loadtest.stack import (
    Api,
    Gateway,
    backing_services,
    free_port,
    gateway,
    livectl_env,
    log_progress,
    redis_client,
    rss_kib,
)

log = logging.getLogger("loadtest")

KIND = b'"type":"fan"'
STAMP = b'"p":'
_PONG = b'"type":"pong"'
_PING = b'{"type":"ping"}'
# Text padding each message to the size of a chat envelope with its tags (~300 B).
_PAD = "主播这件还有M码吗" * 12
_QUEUE_FRAMES = 50
_SEND_BUFFER = 16 * 1024
# The sockets that will stop reading have small kernel buffers (and still keep up while they
# read), so they reach the bound within the run rather than after megabytes.
_STALLED_RECEIVE_BUFFER = 4096
_SETTLE_S = 3.0  # after the sockets connect, before memory is read
_DRAIN_S = 3.0  # after publishing stops, for the last receipts

TARGET_DELIVERIES = 100_000
TARGET_P99_MS = 200.0
TARGET_SLOW_COST = 0.10
TARGET_KIB_PER_SOCKET = 30.0


@dataclass(frozen=True)
class Listeners:
    """One client process's sockets, for two phases of ``phase_s`` each after the go: all of
    them reading, then the first ``stalled`` of them no longer reading."""

    host: str
    port: int
    path: str
    count: int
    stalled: int
    phase_s: float


@dataclass
class PhaseResult:
    delivered: int  # messages received in the phase
    latency: Counter[int]  # publish to receipt, per message and socket, in LATENCY_BUCKET_NS
    last_s: float = 0.0  # when the last of them arrived, after the phase began


@dataclass
class ListenerResult:
    phases: list[PhaseResult]
    # Reading sockets that saw their connection end (must stay 0). A socket that does not
    # read cannot tell: the gateway's count of 4008 closes says what happened to those.
    reading_closed: int


class _Phases:
    """What the sockets of one process received, per phase, by when it arrived."""

    __slots__ = ("go", "phase_s", "results")

    def __init__(self, phase_s: float) -> None:
        self.go = float("inf")
        self.phase_s = phase_s
        self.results = [PhaseResult(0, Counter()), PhaseResult(0, Counter())]

    def add(self, payload: bytes, count: int) -> None:
        now_us = time.time_ns() // 1000
        elapsed = now_us / 1e6 - self.go
        phase = int(elapsed // self.phase_s)
        if not 0 <= phase < len(self.results):
            return
        # One publish call per batch: every message of a frame carries the same stamp (µs).
        start = payload.index(STAMP) + len(STAMP)
        published_us = int(payload[start : payload.index(b",", start)])
        result = self.results[phase]
        result.delivered += count
        result.last_s = elapsed - phase * self.phase_s
        result.latency[(now_us - published_us) * 1000 // LATENCY_BUCKET_NS] += count


class _Listener:
    __slots__ = ("phases", "ready")

    def __init__(self, phases: _Phases) -> None:
        self.phases = phases
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_message(self, payload: bytes) -> None:
        count = payload.count(KIND)
        if count:
            self.phases.add(payload, count)
        elif not self.ready.done() and _PONG in payload:
            self.ready.set_result(None)


def listeners(spec: Listeners) -> ListenerResult:
    return pool.run(_listeners(spec))


async def _listeners(spec: Listeners) -> ListenerResult:
    phases = _Phases(spec.phase_s)
    watchers = [_Listener(phases) for _ in range(spec.count)]
    handlers = [w.on_message for w in watchers]
    clients = [
        *await pool.connect_all(
            spec.host,
            spec.port,
            [spec.path] * spec.stalled,
            handlers[: spec.stalled],
            receive_buffer=_STALLED_RECEIVE_BUFFER,
        ),
        *await pool.connect_all(
            spec.host,
            spec.port,
            [spec.path] * (spec.count - spec.stalled),
            handlers[spec.stalled :],
        ),
    ]
    # A socket answers pings once it follows the room: then it is ready.
    for client in clients:
        client.send(wire.encode_frame(_PING))
    await asyncio.wait_for(asyncio.gather(*(w.ready for w in watchers)), 300)
    phases.go = await pool.ready_then_go()
    await pool.sleep_until(phases.go + spec.phase_s)
    for client in clients[: spec.stalled]:
        client.pause_reading()
    await pool.sleep_until(phases.go + 2 * spec.phase_s)
    closed = [client.closed.done() for client in clients]
    for client in clients:
        client.close()
    return ListenerResult(
        phases=phases.results,
        reading_closed=sum(closed[spec.stalled :]),
    )


@dataclass(frozen=True)
class Phase:
    reading: int  # sockets that read
    published: int  # messages
    deliveries_per_s: float
    p50_ms: float
    p99_ms: float
    # The gateway's full collections that began meanwhile, and their pauses in all: one lands
    # on every delivery it holds up.
    full_collections: int
    full_collection_ms: float

    @property
    def per_reading_socket(self) -> float:
        return self.deliveries_per_s / self.reading


@dataclass(frozen=True)
class Run:
    sockets: int
    stalled: int
    plain: Phase
    slow: Phase
    stalled_closed: int  # by the gateway, with 4008 (its metric)
    reading_closed: int
    load_average: float


async def _publish(redis_url: str, room: str, rate: float, batch: int, window_s: float) -> int:
    """``rate`` messages/s in publish calls of ``batch``, for ``window_s``; returns how many."""
    redis = Redis.from_url(redis_url)
    publisher = Publisher(redis, Settings())
    started = time.monotonic()
    sent = 0
    try:
        while time.monotonic() - started < window_s:
            stamp = time.time_ns() // 1000
            await publisher.publish(
                room,
                [Message("fan", {"p": stamp, "n": sent + i, "text": _PAD}) for i in range(batch)],
            )
            sent += batch
            await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))
    finally:
        await redis.aclose()
    return sent


@dataclass(frozen=True)
class Memory:
    sockets: int
    rss_before_kib: int
    rss_after_kib: int

    @property
    def per_socket_kib(self) -> float:
        return round((self.rss_after_kib - self.rss_before_kib) / self.sockets, 1)


def _measure(
    clients: ClientPool, running: Gateway, redis_url: str, path: str, args: argparse.Namespace
) -> tuple[Run, Memory]:
    shares = [
        args.sockets // args.clients + (i < args.sockets % args.clients)
        for i in range(args.clients)
    ]
    phase_s = args.seconds + _DRAIN_S
    specs = [
        Listeners(
            running.host, running.port, path, share, round(share * args.stalled_share), phase_s
        )
        for share in shares
    ]
    stalled = sum(spec.stalled for spec in specs)
    rss_before = rss_kib(running.pids())
    log.info("connecting %d sockets ...", args.sockets)
    launch = clients.launch([(listeners, spec) for spec in specs], ready_timeout_s=600)
    time.sleep(_SETTLE_S)  # every session parked, its task waiting
    memory = Memory(args.sockets, rss_before, rss_kib(running.pids()))
    go = launch.go()
    room = path.split("/")[3]
    published = []
    full_passes = []
    for phase, note in enumerate(("all reading", f"{stalled} not reading")):
        time.sleep(max(0.0, go + phase * phase_s - time.time()))
        full_passes.append(_full_collections(running.base_url))
        log.info("%s: publishing %.0f messages/s for %.0f s ...", note, args.rate, args.seconds)
        published.append(
            asyncio.run(_publish(redis_url, room, args.rate, args.batch, args.seconds))
        )
    results: list[ListenerResult] = launch.results(timeout_s=phase_s + 60)
    full_passes.append(_full_collections(running.base_url))

    def phase_figures(index: int, reading: int) -> Phase:
        latency: Counter[int] = Counter()
        for result in results:
            latency.update(result.phases[index].latency)
        delivered = sum(result.phases[index].delivered for result in results)
        # Over the time from the first publish to the last receipt: a gateway that lags the
        # publisher is charged for it.
        last_s = max(result.phases[index].last_s for result in results)
        (began, paused_s), (ended, paused_by_end_s) = full_passes[index], full_passes[index + 1]
        return Phase(
            reading=reading,
            published=published[index],
            deliveries_per_s=round(delivered / max(last_s, args.seconds)),
            p50_ms=percentile_ms(latency, 0.50),
            p99_ms=percentile_ms(latency, 0.99),
            full_collections=round(ended - began),
            full_collection_ms=round((paused_by_end_s - paused_s) * 1000, 1),
        )

    run = Run(
        sockets=args.sockets,
        stalled=stalled,
        plain=phase_figures(0, args.sockets),
        slow=phase_figures(1, args.sockets - stalled),
        stalled_closed=int(_metric(running.base_url, "livectl_sockets_overflowed_total")),
        reading_closed=sum(r.reading_closed for r in results),
        load_average=round(os.getloadavg()[0], 2),
    )
    log.info("  %s", run)
    return run, memory


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest fanout",
        description="One room broadcasting to many console sockets on one gateway process.",
    )
    parser.add_argument("--redis-url", help="use this Redis (default: an embedded one)")
    parser.add_argument("--database-url", help="use this PostgreSQL (default: an embedded one)")
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=3, help="client processes")
    parser.add_argument("--rate", type=float, default=20.0, help="messages published per second")
    parser.add_argument("--batch", type=int, default=10, help="messages per publish call")
    parser.add_argument("--seconds", type=float, default=10.0, help="publishing time per run")
    parser.add_argument("--stalled-share", type=float, default=0.05)
    parser.add_argument(
        "--output", type=Path, default=Path(__file__).parent / "results" / "fanout.json"
    )
    return parser.parse_args(argv)


def _raise_fd_limit() -> None:
    """Sockets are file descriptors, in the gateway (a child inherits the limit) and here."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rows(run: Run, memory: Memory) -> list[tuple[str, str, str, str]]:
    """(what, measured, target, verdict) per line of the table."""
    plain, slow = run.plain, run.slow
    cost = 1 - slow.per_reading_socket / plain.per_reading_socket
    kib = memory.per_socket_kib
    lines: list[tuple[str, str, str, bool | None]] = [
        (f"deliveries/s to {run.sockets:,} sockets", f"{plain.deliveries_per_s:,.0f}",
         f">= {TARGET_DELIVERIES:,}", plain.deliveries_per_s >= TARGET_DELIVERIES),
        ("broadcast p50 / p99", f"{plain.p50_ms} / {plain.p99_ms} ms",
         f"p99 <= {TARGET_P99_MS:.0f} ms", plain.p99_ms <= TARGET_P99_MS),
        ("  the gateway's full collections meanwhile",
         f"{plain.full_collections} ({plain.full_collection_ms:,.0f} ms)", "-", None),
        (f"{run.stalled} not reading: deliveries/s", f"{slow.deliveries_per_s:,.0f}", "-", None),
        ("  p50 / p99", f"{slow.p50_ms} / {slow.p99_ms} ms", "-", None),
        ("  the gateway's full collections meanwhile",
         f"{slow.full_collections} ({slow.full_collection_ms:,.0f} ms)", "-", None),
        ("  cost per reading socket", f"{cost:.1%}", f"< {TARGET_SLOW_COST:.0%}",
         cost < TARGET_SLOW_COST),
        ("  closed by the gateway", f"{run.stalled_closed} / {run.stalled}", "all",
         run.stalled_closed == run.stalled),
        ("reading sockets closed", str(run.reading_closed), "0", run.reading_closed == 0),
        ("memory per idle socket", f"{kib} KiB", f"<= {TARGET_KIB_PER_SOCKET:.0f} KiB",
         kib <= TARGET_KIB_PER_SOCKET),
    ]  # fmt: skip
    return [(name, value, target, report.verdict(met)) for name, value, target, met in lines]


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    log_progress()
    _raise_fd_limit()
    conditions = report.machine()
    run_id = secrets.token_hex(3)
    log_dir = args.output.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (
        backing_services(
            "fanout", redis_url=args.redis_url, database_url=args.database_url, run_id=run_id
        ) as (work_dir, urls),
    ):
        env = livectl_env(urls, secrets.token_urlsafe(48), work_dir, free_port())
        env["LIVECTL_CONSOLE_QUEUE_FRAMES"] = str(_QUEUE_FRAMES)
        env["LIVECTL_CONSOLE_SEND_BUFFER_BYTES"] = str(_SEND_BUFFER)
        with gateway(env, 1, log_dir) as running, ClientPool(args.clients) as clients:
            api = Api(running.base_url, env["LIVECTL_SECRET"])
            redis = redis_client(urls.redis_url)
            try:
                room = f"fanout-{run_id}"
                api.live_room(room)
                # Joining at the present, as a console that reconnects with since: the bench
                # measures fan-out, not ten thousand snapshots built at once.
                seq = int(redis.get(RoomKeys(room).channel_seq(Channel.CONSOLE)) or 0)
                token = api.token(Role.HOST, room)
                path = f"/v1/rooms/{room}/console?token={token}&batch=1&since={seq}"
                run, memory = _measure(clients, running, urls.redis_url, path, args)
            finally:
                redis.close()
                api.close()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(
        orjson.dumps(
            {
                "conditions": conditions,
                "settings": {k: str(v) for k, v in vars(args).items()},
                "queue_frames": _QUEUE_FRAMES,
                "send_buffer_bytes": _SEND_BUFFER,
                "run": asdict(run),
                "memory": asdict(memory) | {"per_socket_kib": memory.per_socket_kib},
                "rows": rows(run, memory),
            },
            option=orjson.OPT_INDENT_2,
        )
    )
    print()
    print(f"load average before: {conditions['load_average_before']}; after: {run.load_average}")
    print(report.table(("measurement", "measured", "target", "verdict"), rows(run, memory)))
    print(f"\nJSON: {args.output}")
    return 0


def _metric(base_url: str, sample: str) -> float:
    """A sample of the gateway's metrics (0 until something is counted)."""
    for line in httpx.get(f"{base_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(f"{sample} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _full_collections(base_url: str) -> tuple[float, float]:
    """How many full collections the gateway has made, and their pauses in seconds."""
    name, full = "livectl_collector_pause_seconds", '{generation="2"}'
    return _metric(base_url, f"{name}_count{full}"), _metric(base_url, f"{name}_sum{full}")
