"""The measurements: each sets up its own room, runs client jobs, and checks what was stored."""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import orjson
from redis import Redis
from sqlalchemy.exc import SQLAlchemyError

from livectl.auth.tokens import Role
from livectl.bus.keys import ROOMS, RawEntry, RoomKeys
from livectl.ingest.appender import parse_indexes
from livectl.ingest.entries import entry_ms
from livectl.kit import codec
from livectl.workers import CONCERNS, LATENCY_GROUPS, STREAMS
from loadtest import consoles, load
from loadtest.consoles import ConsoleResult, PacerResult
from loadtest.load import LoadResult, Window
from loadtest.pool import ClientPool, Job, Launch
from loadtest.stack import (
    Api,
    Child,
    Gateway,
    cpu_seconds,
    machine_cpu_seconds,
    process_tree,
    rss_kib,
    scalar_sql,
)

log = logging.getLogger("loadtest")

# Load generators per measurement: two processes, so on two cores a single client event loop
# cannot be what limits the rate.
LOAD_PROCESSES = 2
_READY_TIMEOUT_S = 120.0
_RESULTS_MARGIN_S = 90.0
_STREAM_PAGE = 500
LATENCY_BUCKET_NS = 100_000  # latencies are binned to 0.1 ms
_CATCH_UP_TIMEOUT_S = 30.0
_SAMPLE_EVERY_S = 0.5

_CHAT_TEXTS = (
    "主播好，这件羊绒开衫有M码吗？想要",
    "已拍，什么时候发货呀",
    "颜色好显白，求链接",
    "有优惠券吗？等券再下单",
    "上次买的很好用，回购了",
)


def chat_event(i: int) -> dict[str, Any]:
    """A typical chat event (~110 bytes of JSON), without id: dedupe is not what is measured."""
    return {
        "type": "chat",
        "user": {"id": f"u{i}", "name": f"观众{i}", "level": i % 20},
        "text": _CHAT_TEXTS[i % len(_CHAT_TEXTS)],
    }


def chat_batch(size: int, offset: int = 0) -> bytes:
    return orjson.dumps([chat_event(offset + i) for i in range(size)])


@dataclass(frozen=True)
class Profile:
    name: str
    gateway_processes: tuple[int, ...]
    window: Window
    latency_s: float
    consoles: int
    idle_consoles: int
    ceiling_plain: int
    ceiling_pipelined: int


@dataclass
class Bench:
    """What every measurement needs: the servers, a client pool and naming."""

    redis: Redis
    database_url: str
    # Local server processes whose CPU is accounted (None: not on this machine or unknown).
    redis_pid: int | None
    postgres_pid: int | None
    clients: ClientPool
    profile: Profile
    run_id: str
    log_dir: Path

    def room(self, name: str) -> str:
        return f"lt-{self.run_id}-{name}"

    def forget_rooms(self) -> None:
        """Delete every key of this run's rooms (an external Redis outlives the bench)."""
        pattern = f"lc:{{{self.room('')}*"
        keys = list(self.redis.scan_iter(match=pattern, count=1000))
        if keys:
            self.redis.delete(*keys)
        members = [m for m in self.redis.smembers(ROOMS) if codec.text(m).startswith(self.room(""))]
        if members:
            self.redis.srem(ROOMS, *members)


# ---------------------------------------------------------------------------------------------
# CPU accounting


class CpuWatch:
    """CPU used between ``begin`` and ``stop``, in cores: by each group of the bench's processes,
    by the whole machine, and by everything else on it (other users' work, steal)."""

    def __init__(self, groups: dict[str, Callable[[], Sequence[int]]]) -> None:
        self._groups = groups
        self._before: dict[str, float] = {}
        self._machine_before = (0.0, 0.0)
        self._started = 0.0
        self.cpu: dict[str, float] = {}
        self.stopped = False

    def begin(self) -> None:
        self._started = time.monotonic()
        self._before = {name: cpu_seconds(pids()) for name, pids in self._groups.items()}
        self._machine_before = machine_cpu_seconds()

    def stop(self) -> None:
        elapsed = time.monotonic() - self._started
        cpu = {
            name: (cpu_seconds(pids()) - self._before[name]) / elapsed
            for name, pids in self._groups.items()
        }
        busy, steal = machine_cpu_seconds()
        machine = (busy - self._machine_before[0]) / elapsed
        cpu["other"] = max(0.0, machine - sum(cpu.values()))
        cpu["machine"] = machine
        cpu["steal"] = (steal - self._machine_before[1]) / elapsed
        self.cpu = {name: round(cores, 2) for name, cores in cpu.items()}
        self.stopped = True


def _groups(bench: Bench, gateway: Gateway) -> dict[str, Callable[[], Sequence[int]]]:
    groups: dict[str, Callable[[], Sequence[int]]] = {"gateway": gateway.pids}
    for name, pid in (("redis", bench.redis_pid), ("postgres", bench.postgres_pid)):
        if pid is not None:
            groups[name] = functools.partial(process_tree, pid)
    groups["clients"] = bench.clients.pids
    return groups


def _sleep_until(instant: float) -> None:
    time.sleep(max(0.0, instant - time.time()))


# ---------------------------------------------------------------------------------------------
# Ingest


@dataclass(frozen=True)
class IngestKind:
    key: str
    label: str
    events_per_answer: int  # per request or frame
    connections_per_process: int
    in_flight: int  # per connection (REST: one request at a time)
    rest: bool = False


INGEST_KINDS = (
    IngestKind("rest_1000", "REST, 1000-event batches", 1000, 4, 1, rest=True),
    IngestKind("ws_500", "WS, 500-event frames", 500, 4, 2),
    IngestKind("ws_1", "WS, 1-event frames, 1000 sockets", 1, 500, 1),
)


@dataclass
class IngestFigure:
    kind: str
    label: str
    gateway_processes: int
    events_per_s: float
    answers_per_s: float
    accepted_total: int
    stored_events: int
    stored_entries: int
    duplicates: int
    rejected: int
    error_count: int
    errors: list[str]
    cpu_cores: dict[str, float]
    gateway_us_per_event: float


def measure_ingest(bench: Bench, gateway: Gateway, api: Api, kind: IngestKind) -> IngestFigure:
    processes = gateway.processes
    room = bench.room(f"{kind.key}-{processes}p")
    api.live_room(room)
    token = api.token(Role.INGEST, room)
    path = f"/v1/rooms/{room}/events" if kind.rest else f"/v1/rooms/{room}/ingest?token={token}"
    log.info("ingest %s, gateway with %d processes ...", kind.label, processes)
    results, cpu = _run_ingest_load(bench, gateway, path, token, kind)
    stream = RoomKeys(room).events
    entries, events = count_stream_events(bench.redis, stream)
    bench.redis.delete(stream)  # a later worker must not archive millions of bench events
    window = bench.profile.window
    accepted = sum(r.accepted_in_window for r in results)
    figure = IngestFigure(
        kind=kind.key,
        label=kind.label,
        gateway_processes=processes,
        events_per_s=round(accepted / window.duration_s),
        answers_per_s=round(sum(r.answers_in_window for r in results) / window.duration_s),
        accepted_total=sum(r.accepted_total for r in results),
        stored_events=events,
        stored_entries=entries,
        duplicates=sum(r.duplicates for r in results),
        rejected=sum(r.rejected for r in results),
        error_count=sum(r.error_count for r in results),
        errors=[e for r in results for e in r.errors][:5],
        cpu_cores=cpu,
        gateway_us_per_event=_us_per(cpu["gateway"], accepted / window.duration_s),
    )
    log.info("  %s events/s; cpu %s", f"{figure.events_per_s:,}", cpu)
    return figure


@dataclass
class FloorFigure:
    """The WebSocket server's floor (``loadtest.floor_app``) under the one-event-frame load."""

    server_processes: int
    frames_per_s: float
    server_us_per_frame: float
    error_count: int
    cpu_cores: dict[str, float]


def measure_server_floor(bench: Bench, server: Gateway) -> FloorFigure:
    kind = next(kind for kind in INGEST_KINDS if kind.events_per_answer == 1)
    log.info("WebSocket server floor: %s, %d processes ...", kind.label, server.processes)
    results, cpu = _run_ingest_load(bench, server, "/floor", "-", kind)
    frames_per_s = sum(r.answers_in_window for r in results) / bench.profile.window.duration_s
    figure = FloorFigure(
        server_processes=server.processes,
        frames_per_s=round(frames_per_s),
        server_us_per_frame=_us_per(cpu["gateway"], frames_per_s),
        error_count=sum(r.error_count for r in results),
        cpu_cores=cpu,
    )
    log.info("  %s frames/s; cpu %s", f"{figure.frames_per_s:,}", cpu)
    return figure


def _run_ingest_load(
    bench: Bench, gateway: Gateway, path: str, token: str, kind: IngestKind
) -> tuple[list[LoadResult], dict[str, float]]:
    window = bench.profile.window
    if kind.events_per_answer > 1:
        # Different viewers in every payload, like several bridges' batches.
        payloads = tuple(
            chat_batch(kind.events_per_answer, offset=i * kind.events_per_answer)
            for i in range(min(kind.connections_per_process, 4))
        )
    else:
        payloads = tuple(orjson.dumps(chat_event(i)) for i in range(50))
    spec = load.IngestLoad(
        gateway.host,
        gateway.port,
        path,
        token,
        kind.rest,
        payloads,
        kind.events_per_answer,
        kind.connections_per_process,
        kind.in_flight,
        window,
    )
    jobs: list[Job] = [(load.ingest_load, spec)] * LOAD_PROCESSES
    launch = bench.clients.launch(jobs, ready_timeout_s=_READY_TIMEOUT_S)
    go = launch.go()
    start, end = window.bounds(go)
    watch = CpuWatch(_groups(bench, gateway))
    _sleep_until(start)
    watch.begin()
    _sleep_until(end)
    watch.stop()
    results: list[LoadResult] = launch.results(window.warmup_s + _RESULTS_MARGIN_S)
    return results, watch.cpu


def _us_per(cores: float, per_s: float) -> float:
    # CPU time per unit: unlike the rate, barely moved by other load on the machine, so it is
    # the figure to compare across runs and code changes.
    return round(cores / max(per_s, 1) * 1e6, 1)


def count_stream_events(redis: Redis, stream: str) -> tuple[int, int]:
    """Entries and events in a room stream, counted without decoding the events: every stored
    event is a JSON object with exactly one ``"type":`` key, minus the listed duplicates."""
    entries = events = 0
    start = "-"
    while page := cast(list[RawEntry], redis.xrange(stream, start, "+", count=_STREAM_PAGE)):
        for _, fields in page:
            entries += 1
            events += fields[b"e"].count(b'"type":') - len(parse_indexes(fields.get(b"x", b"")))
        start = "(" + codec.text(page[-1][0])
    return entries, events


# ---------------------------------------------------------------------------------------------
# Chat to console latency


@dataclass
class LatencyFigure:
    gateway_processes: int
    rate_per_s: int
    consoles: int
    duration_s: float
    sent: int
    accepted: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    received_min: int
    received_max: int
    consoles_complete: int  # consoles that got every sent event exactly once, in order
    irregular_frames: int
    closed_consoles: list[int]
    archived: int | None  # events of the room in the PostgreSQL archive (None: not readable)
    worker_lag_max_ms: dict[str, int]
    worker_pending_max: dict[str, int]
    pacer_behind_max_ms: float
    # Where the time goes, p50 and p99 in ms (ms clocks): pacer write -> stream entry (gateway
    # ingest), stream entry -> console message published (worker), published -> received.
    stages_ms: dict[str, tuple[float, float]]
    cpu_cores: dict[str, float]
    errors: list[str] = field(default_factory=list)


def measure_latency(
    bench: Bench,
    gateway: Gateway,
    api: Api,
    env: dict[str, str],
    *,
    events_per_frame: int = 50,
    period_s: float = 0.01,
) -> LatencyFigure:
    profile = bench.profile
    processes = gateway.processes
    room = bench.room(f"latency-{processes}p")
    api.live_room(room)
    stream = RoomKeys(room).events
    host, port = gateway.host, gateway.port
    console_path = f"/v1/rooms/{room}/console?token={api.token(Role.HOST, room)}&batch=1"
    ingest_path = f"/v1/rooms/{room}/ingest?token={api.token(Role.INGEST, room)}"
    rate = round(events_per_frame / period_s)
    log.info(
        "latency at %d chat events/s, %d consoles, gateway with %d processes ...",
        rate,
        profile.consoles,
        processes,
    )
    # Laid out as `livectl up` runs them: console relaying in a process of its own.
    bulk = Child(
        f"worker-{processes}p",
        ["worker", *(f"--except-group={g}" for g in LATENCY_GROUPS)],
        env,
        bench.log_dir,
    )
    relay = Child(
        f"relay-{processes}p",
        ["worker", *(f"--group={g}" for g in LATENCY_GROUPS)],
        env,
        bench.log_dir,
    )
    workers = [bulk, relay]
    try:
        _wait_for_groups(bench.redis, stream, workers)
        per_process = [
            profile.consoles // LOAD_PROCESSES + (1 if i < profile.consoles % LOAD_PROCESSES else 0)
            for i in range(LOAD_PROCESSES)
        ]
        jobs: list[Job] = [
            (
                consoles.consoles,
                consoles.Consoles(
                    host,
                    port,
                    console_path,
                    count,
                    expected=round(profile.latency_s / period_s) * events_per_frame,
                    until_s=profile.latency_s,
                    limit_s=_CATCH_UP_TIMEOUT_S,
                ),
            )
            for count in per_process
        ]
        jobs.append(
            (
                consoles.pacer,
                consoles.Pacer(
                    host,
                    port,
                    ingest_path,
                    events_per_frame,
                    period_s,
                    profile.latency_s,
                    ack_wait_s=_CATCH_UP_TIMEOUT_S,
                ),
            )
        )
        launch = bench.clients.launch(jobs, ready_timeout_s=_READY_TIMEOUT_S)
        go = launch.go()
        groups = _groups(bench, gateway)
        groups["worker"] = bulk.pids
        groups["relay"] = relay.pids
        watch = CpuWatch(groups)
        _sleep_until(go)
        watch.begin()
        lag_max, pending_max = _sample_lag_until(
            bench.redis, stream, launch, go + profile.latency_s, watch
        )
        cpu = watch.cpu
        outcome = launch.results(profile.latency_s + _RESULTS_MARGIN_S)
        watchers: list[ConsoleResult] = outcome[:-1]
        sent: PacerResult = outcome[-1]
        _wait_caught_up(bench.redis, stream)
    finally:
        for worker in workers:
            worker.stop()
    appended = append_times(bench.redis, stream, events_per_frame)
    total = len(sent.send_ns) * events_per_frame
    histogram, worst_ns = latency_histogram(sent.send_ns, events_per_frame, watchers)
    received = [n for w in watchers for n in w.received]
    irregular = [n for w in watchers for n in w.irregular]
    complete = sum(1 for n, odd in zip(received, irregular, strict=True) if n == total and not odd)
    archived = _archived(bench.database_url, room)
    figure = LatencyFigure(
        gateway_processes=processes,
        rate_per_s=rate,
        consoles=profile.consoles,
        duration_s=profile.latency_s,
        sent=total,
        accepted=sent.accepted,
        p50_ms=percentile_ms(histogram, 0.50),
        p90_ms=percentile_ms(histogram, 0.90),
        p99_ms=percentile_ms(histogram, 0.99),
        max_ms=round(worst_ns / 1e6, 1),
        received_min=min(received),
        received_max=max(received),
        consoles_complete=complete,
        irregular_frames=sum(irregular),
        closed_consoles=[code for w in watchers for code in w.close_codes],
        archived=archived,
        worker_lag_max_ms=lag_max,
        worker_pending_max=pending_max,
        pacer_behind_max_ms=round(sent.max_behind_ms, 1),
        stages_ms=stages(sent.send_ns, appended, events_per_frame, watchers),
        cpu_cores=cpu,
        errors=sent.errors,
    )
    log.info(
        "  p50 %.1f ms, p99 %.1f ms, max %.1f ms; %d/%d consoles complete",
        figure.p50_ms,
        figure.p99_ms,
        figure.max_ms,
        complete,
        profile.consoles,
    )
    return figure


def _archived(database_url: str, room: str) -> int | None:
    """A cross-check only: a schema this bench does not know must not lose the run's figures."""
    try:
        count = scalar_sql(
            database_url, "SELECT count(*) FROM events WHERE room_id = :room", room=room
        )
    except SQLAlchemyError as exc:
        log.warning("cannot count the archived events: %s", exc)
        return None
    return int(str(count))


def _wait_for_groups(redis: Redis, stream: str, workers: Sequence[Child]) -> None:
    """Workers create their consumer groups when they next scan for rooms; start after that,
    so the first events do not wait out a scan interval."""
    deadline = time.monotonic() + _CATCH_UP_TIMEOUT_S
    events_groups = len(CONCERNS.keys() - STREAMS.keys())
    while time.monotonic() < deadline:
        for worker in workers:
            worker.check_running()
        if redis.exists(stream) and len(redis.xinfo_groups(stream)) >= events_groups:
            return
        time.sleep(0.1)
    raise TimeoutError("the worker did not start following the latency room")


def delivered_lag_ms(stream_info: dict[str, Any], group: dict[str, Any]) -> int:
    """How far behind the stream's newest entry a group's deliveries are, in ms. A group that
    has delivered nothing yet is behind by everything the stream holds."""
    head = entry_ms(codec.text(stream_info["last-generated-id"]))
    delivered = codec.text(group["last-delivered-id"])
    if delivered == "0-0":
        first = stream_info["first-entry"]
        return head - entry_ms(codec.text(first[0])) if first else 0
    return max(0, head - entry_ms(delivered))


def _group_lag(redis: Redis, stream: str) -> Iterator[tuple[str, int, int]]:
    """(group, ms between the stream's newest entry and the group's last delivered, pending)."""
    info = redis.xinfo_stream(stream)
    for group in redis.xinfo_groups(stream):
        yield codec.text(group["name"]), delivered_lag_ms(info, group), int(group["pending"])


def _sample_lag_until(
    redis: Redis, stream: str, launch: Launch, stop_sending: float, watch: CpuWatch
) -> tuple[dict[str, int], dict[str, int]]:
    """Sample the worker lag while the clients run; close the CPU window when sending stops."""
    lag_max: Counter[str] = Counter()
    pending_max: Counter[str] = Counter()
    while not launch.done():
        for name, lag, pending in _group_lag(redis, stream):
            lag_max[name] = max(lag_max[name], lag)
            pending_max[name] = max(pending_max[name], pending)
        if time.time() >= stop_sending and not watch.stopped:
            watch.stop()
        time.sleep(_SAMPLE_EVERY_S)
    if not watch.stopped:
        watch.stop()
    return dict(lag_max), dict(pending_max)


def _wait_caught_up(redis: Redis, stream: str) -> None:
    deadline = time.monotonic() + _CATCH_UP_TIMEOUT_S
    while time.monotonic() < deadline:
        if all(lag == 0 and pending == 0 for _, lag, pending in _group_lag(redis, stream)):
            return
        time.sleep(0.2)
    log.warning("the worker had not caught up %.0f s after the load", _CATCH_UP_TIMEOUT_S)


def latency_histogram(
    send_ns: Sequence[int], per_frame: int, results: Sequence[ConsoleResult]
) -> tuple[Counter[int], int]:
    """Latency of every (event, console) pair, binned, and the worst one: each record says a
    console received events first..last at one instant; event i was sent with frame i // n."""
    histogram: Counter[int] = Counter()
    worst = 0
    for result in results:
        for received, first, last in zip(result.recv_ns, result.first, result.last, strict=True):
            index = first
            while index <= last:
                frame = index // per_frame
                upto = min(last, (frame + 1) * per_frame - 1)
                latency = received - send_ns[frame]
                histogram[latency // LATENCY_BUCKET_NS] += upto - index + 1
                worst = max(worst, latency)
                index = upto + 1
    return histogram, worst


def append_times(redis: Redis, stream: str, per_frame: int) -> dict[int, int]:
    """When each pacer frame was appended to the room stream (entry id, ms)."""
    appended: dict[int, int] = {}
    start = "-"
    while page := cast(list[RawEntry], redis.xrange(stream, start, "+", count=_STREAM_PAGE)):
        for entry_id, fields in page:
            at = entry_ms(codec.text(entry_id))
            for event in orjson.loads(fields[b"e"]):
                index = int(event["text"][2:].split(" ", 1)[0])
                appended.setdefault(index // per_frame, at)
        start = "(" + codec.text(page[-1][0])
    return appended


def stages(
    send_ns: Sequence[int],
    appended: dict[int, int],
    per_frame: int,
    results: Sequence[ConsoleResult],
) -> dict[str, tuple[float, float]]:
    """p50 and p99 of each stage; ingest per pacer frame, the others per console frame (their
    first event)."""
    ingest: Counter[int] = Counter(
        round(appended[frame] - sent / 1e6)
        for frame, sent in enumerate(send_ns)
        if frame in appended  # frames never acked (the pacer gave up) were never stored
    )
    worker: Counter[int] = Counter()
    fan_out: Counter[int] = Counter()
    for result in results:
        for received, first, published in zip(
            result.recv_ns, result.first, result.published_ms, strict=True
        ):
            worker[published - appended[first // per_frame]] += 1
            fan_out[round(received / 1e6 - published)] += 1
    return {
        name: (_quantile(counts, 0.50), _quantile(counts, 0.99))
        for name, counts in (("ingest", ingest), ("worker", worker), ("fan_out", fan_out))
    }


def _quantile(counts: Counter[int], fraction: float) -> float:
    total = sum(counts.values())
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= fraction * total:
            return float(value)
    return float("nan")


def percentile_ms(histogram: Counter[int], fraction: float) -> float:
    """The upper edge of the bin holding the given fraction of all samples."""
    total = sum(histogram.values())
    if not total:
        return float("nan")
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= fraction * total:
            return round((bucket + 1) * LATENCY_BUCKET_NS / 1e6, 1)
    raise AssertionError("unreachable: the fractions sum to the total")


# ---------------------------------------------------------------------------------------------
# Memory per idle console


@dataclass
class MemoryFigure:
    gateway_processes: int
    sockets: int
    still_open: int
    rss_before_kib: int
    rss_after_kib: int
    per_socket_kib: float


def measure_idle_memory(bench: Bench, gateway: Gateway, api: Api) -> MemoryFigure:
    count = bench.profile.idle_consoles
    processes = gateway.processes
    room = bench.room(f"idle-{processes}p")
    api.live_room(room)
    host, port = gateway.host, gateway.port
    path = f"/v1/rooms/{room}/console?token={api.token(Role.HOST, room)}&batch=1"
    log.info("memory of %d idle consoles, gateway with %d processes ...", count, processes)
    # A few consoles first, so one-time costs (first socket, lazy imports, the room's reader)
    # are not charged to the measured ones.
    warm = bench.clients.launch(
        [(consoles.idle_consoles, consoles.IdleConsoles(host, port, path, 20))],
        ready_timeout_s=_READY_TIMEOUT_S,
    )
    warm.go()
    warm.results(_RESULTS_MARGIN_S)
    time.sleep(1.0)
    before = rss_kib(gateway.pids())
    held = bench.clients.launch(
        [(consoles.idle_consoles, consoles.IdleConsoles(host, port, path, count))],
        ready_timeout_s=_READY_TIMEOUT_S,
    )
    time.sleep(2.0)  # let every session park (snapshot sent, tasks waiting)
    after = rss_kib(gateway.pids())
    held.go()
    (still_open,) = held.results(_RESULTS_MARGIN_S)
    figure = MemoryFigure(
        gateway_processes=processes,
        sockets=count,
        still_open=still_open,
        rss_before_kib=before,
        rss_after_kib=after,
        per_socket_kib=round((after - before) / count, 1),
    )
    log.info("  %.1f KiB per socket", figure.per_socket_kib)
    return figure
