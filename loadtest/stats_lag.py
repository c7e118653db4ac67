"""``python -m loadtest stats-lag``: do the stats and ranking workers keep up with ingest?

Drives a mix of events (chat naming the product, likes, enters, clicks, carts, orders) as
REST batches of 1,000 into N live rooms as fast as the gateway takes them (the foundation's
REST load generator, one client process per room), with only the ``stats`` and ``ranking``
consumer groups running in W worker processes, and samples every room's consumer lag: how far
the group's last delivered entry is behind the stream's newest, how old its oldest pending
entry is, and how many are pending. Reports events/s per worker process once both groups have
caught up.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from redis import Redis

from livectl.auth.tokens import Role
from livectl.bus.keys import RoomKeys
from livectl.ingest.entries import entry_ms
from livectl.kit import codec
from loadtest import load, report
from loadtest.bench import CpuWatch, chat_event, delivered_lag_ms
from loadtest.load import LoadResult, Window
from loadtest.pool import ClientPool
from loadtest.stack import (
    Api,
    Child,
    Gateway,
    backing_services,
    cpu_seconds,
    free_port,
    gateway,
    livectl_env,
    log_progress,
    process_tree,
    redis_client,
)

log = logging.getLogger("loadtest")

GROUPS = ("stats", "ranking")
_SAMPLE_EVERY_S = 0.5
_CATCH_UP_TIMEOUT_S = 60.0
_READY_TIMEOUT_S = 120.0
_BATCH = 1000
_CONNECTIONS_PER_ROOM = 4
# Distinct batches the clients send in turn: 38,400 distinct questions, 9,600 of them naming
# the product, more than the 8,192 texts a worker keeps the reading of (and the normaliser
# the fold of), so when they come round again they are not found there.
_PAYLOADS = 192
RESULTS = Path(__file__).parent / "results" / "stats_lag.json"


def viewer_chat(i: int) -> dict[str, Any]:
    """Three chats in five are the lines every live repeats, which a worker keeps the reading
    of; two are questions that differ in their numbers, and of those the quarter that name the
    product are normalised and matched afresh."""
    event = chat_event(i)
    if i % 4 >= 2:
        item = "羊绒开衫" if i % 8 == 2 else "这件"  # a quarter of them name the product
        size = "SML"[i % 3]
        event["text"] = f"第{i}位：身高{150 + i % 40}体重{90 + i % 60}斤，{item}{size}码还有吗？"
    return event


def event_mix(size: int, offset: int) -> bytes:
    """A batch like a busy room's: mostly chat and likes, some viewers coming in, some buying."""
    events: list[dict[str, Any]] = []
    for i in range(offset, offset + size):
        user = {"id": f"u{i % 50_000}", "new": i % 7 == 0, "fan": i % 5 == 0}
        kind = i % 20
        if kind < 10:
            events.append(viewer_chat(i))
        elif kind < 15:
            events.append({"type": "like", "count": 1 + i % 5, "user": user})
        elif kind < 17:
            events.append({"type": "enter", "user": user})
        elif kind == 17:
            events.append({"type": "click", "product_id": "sku-1", "user": user})
        elif kind == 18:
            events.append({"type": "cart", "product_id": "sku-1", "user": user})
        else:
            order = {"id": f"o{i}", "quantity": 1, "amount": 29900}
            events.append({"type": "order", "product_id": "sku-1", "order": order, "user": user})
    return orjson.dumps(events)


def room_lag(redis: Redis, room: str, now_ms: int) -> dict[str, tuple[int, int, int]]:
    """Per group: (delivered lag ms, age of the oldest pending entry ms, pending count)."""
    stream = RoomKeys(room).events
    if not redis.exists(stream):
        return {}
    info = redis.xinfo_stream(stream)
    lags = {}
    for group in redis.xinfo_groups(stream):
        name = codec.text(group["name"])
        delivered = delivered_lag_ms(info, group)
        pending = int(group["pending"])
        oldest = 0
        if pending:
            first = redis.xpending(stream, name)["min"]  # None if acked since XINFO
            oldest = max(0, now_ms - entry_ms(codec.text(first))) if first else 0
        lags[name] = (delivered, oldest, pending)
    return lags


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest stats-lag", description=__doc__)
    parser.add_argument("--redis-url", help="use this Redis (default: an embedded one)")
    parser.add_argument("--database-url", help="use this PostgreSQL server (scratch database)")
    parser.add_argument("--rooms", type=int, default=2, help="one client process each")
    parser.add_argument("--seconds", type=float, default=15, help="measured load duration")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument(
        "--worker-batch", type=int, help="LIVECTL_WORKER_BATCH: stream entries per read"
    )
    parser.add_argument("--gateway-processes", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    log_progress()
    conditions = report.machine()
    run_id = secrets.token_hex(3)
    with (
        backing_services(
            "statslag", redis_url=args.redis_url, database_url=args.database_url, run_id=run_id
        ) as (work_dir, urls),
    ):
        log_dir = args.output.parent / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        redis = redis_client(urls.redis_url)
        secret = secrets.token_urlsafe(48)
        env = livectl_env(urls, secret, work_dir, free_port())
        if args.worker_batch:
            env["LIVECTL_WORKER_BATCH"] = str(args.worker_batch)
        rooms = [f"lag-{run_id}-{i}" for i in range(args.rooms)]
        with gateway(env, args.gateway_processes, log_dir) as running:
            api = Api(running.base_url, secret)
            for room in rooms:
                api.live_room(room)
            tokens = {room: api.token(Role.INGEST, room) for room in rooms}
            api.close()
            group_args = [part for group in GROUPS for part in ("--group", group)]
            workers = [
                Child(f"stats-worker-{i}", ["worker", *group_args], env, log_dir)
                for i in range(args.workers)
            ]
            try:
                result = measure(
                    redis,
                    running=running,
                    tokens=tokens,
                    workers=workers,
                    window=Window(warmup_s=2.0, duration_s=args.seconds),
                    # A server's CPU is only readable when it runs on this machine.
                    redis_pid=int(redis.info("server")["process_id"])
                    if urlsplit(urls.redis_url).hostname in ("127.0.0.1", "localhost")
                    else None,
                )
            finally:
                for worker in workers:
                    worker.stop()
                for room in rooms:
                    keys = list(redis.scan_iter(match=f"lc:{{{room}}}*", count=1000))
                    if keys:
                        redis.delete(*keys)
                    redis.srem("lc:rooms", room)
        redis.close()
    result["conditions"] = conditions
    result["worker_batch"] = args.worker_batch or "default"
    result["rows"] = rows(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(report.table(("measurement", "measured", "target", "verdict"), result["rows"]))
    print(f"\nJSON: {args.output}")
    return 0


# Issue 3: at the foundation's maximum ingest rate, stats and ranking keep up within this.
TARGET_LAG_MS = 1000


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(what, measured, target, verdict) per line of the suite's table."""
    lag = max(result["delivered_lag_max_ms"].values(), default=0)
    oldest = max(result["oldest_pending_max_ms"].values(), default=0)
    exact = result["chats_counted"] == result["chats_sent"]
    return [
        (
            f"ingest at full speed, {result['rooms']} rooms, REST batches",
            f"{result['ingest_events_per_s']:,} ev/s",
            "-",
            report.verdict(None),
        ),
        (
            f"stats + ranking lag, max, {result['worker_processes']} worker process(es)",
            f"{lag:,} ms (oldest pending {oldest:,} ms)",
            f"< {TARGET_LAG_MS:,} ms",
            report.verdict(lag < TARGET_LAG_MS),
        ),
        (
            "  events per worker CPU-second; caught up after the load",
            f"{result['events_per_worker_cpu_s'] or 0:,}; {result['caught_up_s_after_load']} s",
            "-",
            report.verdict(None),
        ),
        (
            "  chats counted / sent",
            f"{result['chats_counted']:,} / {result['chats_sent']:,}",
            "equal",
            report.verdict(exact),
        ),
    ]


def measure(
    redis: Redis,
    *,
    running: Gateway,
    tokens: dict[str, str],
    workers: list[Child],
    window: Window,
    redis_pid: int | None,
) -> dict[str, Any]:
    """Every room fed by its own client process, as fast as the gateway answers."""
    rooms = list(tokens)
    payloads = tuple(event_mix(_BATCH, i * _BATCH) for i in range(_PAYLOADS))
    specs = [
        load.IngestLoad(
            running.host,
            running.port,
            f"/v1/rooms/{room}/events",
            token,
            True,
            payloads,
            _BATCH,
            connections=_CONNECTIONS_PER_ROOM,
            in_flight=1,
            window=window,
        )
        for room, token in tokens.items()
    ]
    lag_max: Counter[str] = Counter()
    oldest_max: Counter[str] = Counter()
    pending_max: Counter[str] = Counter()
    lag_series: list[tuple[float, int]] = []  # (s since the measured window began, worst lag ms)
    time.sleep(2.0)  # the workers find the rooms on their next scan
    worker_pids = [pid for w in workers for pid in w.pids()]
    worker_cpu_before = cpu_seconds(worker_pids)
    with ClientPool(len(specs)) as clients:
        groups: dict[str, Callable[[], Sequence[int]]] = {
            "gateway": running.pids,
            "workers": lambda: worker_pids,
            "clients": clients.pids,
        }
        if redis_pid is not None:
            groups["redis"] = functools.partial(process_tree, redis_pid)
        watch = CpuWatch(groups)
        launch = clients.launch(
            [(load.ingest_load, spec) for spec in specs], ready_timeout_s=_READY_TIMEOUT_S
        )
        start, end = window.bounds(launch.go())
        time.sleep(max(0.0, start - time.time()))
        watch.begin()
        while not launch.done():
            if time.time() >= end and not watch.stopped:
                watch.stop()
            worst, _ = sample(redis, rooms, lag_max, oldest_max, pending_max)
            lag_series.append((round(time.time() - start, 1), worst))
            for worker in workers:
                worker.check_running()
            time.sleep(_SAMPLE_EVERY_S)
        if not watch.stopped:
            watch.stop()
        results: list[LoadResult] = launch.results(_READY_TIMEOUT_S)
    sending_ended = time.monotonic()
    deadline = sending_ended + _CATCH_UP_TIMEOUT_S
    while time.monotonic() < deadline:
        _, behind = sample(redis, rooms, lag_max, oldest_max, pending_max)
        if not behind:
            break
        time.sleep(0.1)
    worker_cpu_s = cpu_seconds(worker_pids) - worker_cpu_before
    in_window = sum(r.accepted_in_window for r in results)
    accepted = sum(r.accepted_total for r in results)
    # Every payload is half chat: what the stats group counted must be exactly that.
    counted = sum(int(redis.hget(RoomKeys(room).stats_totals, "comments") or 0) for room in rooms)
    return {
        "rooms": len(rooms),
        "worker_processes": len(workers),
        "ingest_events_per_s": round(in_window / window.duration_s),
        "accepted_events_total": accepted,
        "ingest_errors": sum(r.error_count for r in results),
        "ingest_error_samples": [e for r in results for e in r.errors][:5],
        "caught_up_s_after_load": round(time.monotonic() - sending_ended, 1),
        "chats_sent": accepted // 2,
        "chats_counted": counted,
        # Both groups together, from the start of the load until caught up: what one worker
        # process would handle with a core to itself.
        "worker_cpu_s": round(worker_cpu_s, 1),
        "events_per_worker_cpu_s": round(accepted / worker_cpu_s) if worker_cpu_s else None,
        "delivered_lag_max_ms": dict(lag_max),
        "oldest_pending_max_ms": dict(oldest_max),
        "delivered_lag_series": lag_series,
        "pending_max_entries": dict(pending_max),
        "cpu_cores": watch.cpu,
    }


def sample(
    redis: Redis,
    rooms: list[str],
    lag_max: Counter[str],
    oldest_max: Counter[str],
    pending_max: Counter[str],
) -> tuple[int, int]:
    """Fold one sample of every room into the maxima. Returns this sample's worst delivered
    lag (ms) and how many entries the groups have yet to deliver or ack (0: caught up)."""
    now = int(time.time() * 1000)
    worst = behind = 0
    for room in rooms:
        for group, (delivered, oldest, pending) in room_lag(redis, room, now).items():
            if group not in GROUPS:
                continue
            lag_max[group] = max(lag_max[group], delivered)
            oldest_max[group] = max(oldest_max[group], oldest)
            pending_max[group] = max(pending_max[group], pending)
            worst = max(worst, delivered)
            behind += (delivered > 0) + pending
    return worst, behind
