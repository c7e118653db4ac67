"""``python -m loadtest opinion``: how fast chat is read, and whether the opinion worker keeps up.

1. Normalise + score + match (watchlist tags, question intents, blocked words), in this one
   process, so on one core: messages per second over a corpus built from the labelled comments.
2. A ``livectl worker --group opinion`` process against Redis and PostgreSQL, fed chat straight
   into a room's event stream at a fixed rate (entries of 100 events, as batched ingest writes
   them): its consumer-group lag while fed, the time it needs to drain, and its CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import random
import secrets
import time
from pathlib import Path
from typing import Any

from livectl.bus.keys import ROOMS, RoomKeys
from livectl.embedded import ServiceUrls
from livectl.kit import codec
from livectl.moderation.service import compile_policy
from livectl.opinion.analysis import analyse
from livectl.opinion.keywords import default_watchlist
from loadtest import report
from loadtest.stack import (
    Child,
    backing_services,
    cpu_seconds,
    free_port,
    livectl_env,
    log_progress,
    redis_client,
)

log = logging.getLogger("loadtest")

COMMENTS = Path(__file__).parent.parent / "tests" / "data" / "comments.tsv"
RESULTS = Path(__file__).parent / "results" / "opinion.json"
_EVENTS_PER_ENTRY = 100
_LAG_SAMPLE_S = 0.5
_DRAIN_TIMEOUT_S = 60.0


def corpus(size: int, seed: int = 7) -> list[str]:
    """Chat as a busy room types it: the labelled comments, with names, emoji and noise."""
    with COMMENTS.open(encoding="utf-8") as table:
        texts = [row["text"] for row in csv.DictReader(table, delimiter="\t")]
    rng = random.Random(seed)
    prefixes = ["", "", "主播", "姐妹们", "@小助理 ", "1号链接", "啊啊啊"]
    suffixes = ["", "", "!!!", "？", "😂", "👍👍", "哈哈哈", "～～"]
    return [f"{rng.choice(prefixes)}{rng.choice(texts)}{rng.choice(suffixes)}" for _ in range(size)]


def measure_analysis(seconds: float) -> dict[str, Any]:
    messages = corpus(50_000)
    watchlist = default_watchlist()
    policy = compile_policy(codec.dumps({"blocked_words": ["竞品", "某宝"], "slow_mode_s": 0}))
    for text in messages[:1000]:  # warm the normaliser's table and the automata
        analyse(text, watchlist)
    done = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    while time.perf_counter() - started < seconds:
        for text in messages:
            policy.blocked.contains(analyse(text, watchlist).words)
        done += len(messages)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return {
        "messages": done,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "per_s_wall": round(done / wall),
        "per_s_cpu": round(done / cpu),
        "target_per_s": 20_000,
    }


def measure_worker(
    redis_url: str, database_url: str, rate: int, seconds: float, log_dir: Path
) -> dict[str, Any]:
    redis = redis_client(redis_url)
    room = f"bench-opinion-{secrets.token_hex(3)}"
    keys = RoomKeys(room)
    messages = corpus(20_000, seed=11)
    urls = ServiceUrls(redis_url=redis_url, database_url=database_url)
    env = livectl_env(urls, secrets.token_urlsafe(48), log_dir, free_port())
    worker = Child("opinion-worker", ["worker", "--group", "opinion"], env, log_dir)
    try:
        redis.sadd(ROOMS, room)
        time.sleep(2.0)  # the worker starts and finds the room
        worker.check_running()
        cpu_before = cpu_seconds(worker.pids())
        lags: list[int] = []
        sent = 0
        started = time.monotonic()
        next_sample = started
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * rate)
            while sent + _EVENTS_PER_ENTRY <= due:
                batch = [
                    {
                        "type": "chat",
                        "user": {"id": f"v{(sent + n) % 5000}"},
                        "text": messages[(sent + n) % len(messages)],
                    }
                    for n in range(_EVENTS_PER_ENTRY)
                ]
                redis.xadd(keys.events, {"e": json.dumps(batch, ensure_ascii=False)})
                sent += _EVENTS_PER_ENTRY
            if time.monotonic() >= next_sample:
                lags.append(_lag(redis, keys.events))
                next_sample += _LAG_SAMPLE_S
            time.sleep(0.005)
        fed_s = time.monotonic() - started
        drained_at = _drain(redis, keys.events)
        cpu = cpu_seconds(worker.pids()) - cpu_before
        worker.check_running()
        return {
            "rate_per_s": rate,
            "fed_s": round(fed_s, 1),
            "events": sent,
            "max_lag_events": max(lags, default=0) * _EVENTS_PER_ENTRY,
            "final_lag_events": (lags[-1] if lags else 0) * _EVENTS_PER_ENTRY,
            "drain_s": None if drained_at is None else round(drained_at - started - fed_s, 2),
            "worker_cpu_cores": round(cpu / (time.monotonic() - started), 2),
        }
    finally:
        worker.stop()
        redis.delete(keys.events)
        redis.srem(ROOMS, room)
        redis.close()


def _lag(redis: Any, stream: str) -> int:
    """Entries not yet delivered to the opinion group, plus those delivered and not acked."""
    for group in redis.xinfo_groups(stream):
        if group["name"] in (b"opinion", "opinion"):
            return int(group.get("lag") or 0) + int(group.get("pending") or 0)
    return int(redis.xlen(stream))


def _drain(redis: Any, stream: str) -> float | None:
    deadline = time.monotonic() + _DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        if _lag(redis, stream) == 0:
            return time.monotonic()
        time.sleep(0.05)
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest opinion", description=__doc__)
    parser.add_argument("--redis-url", help="use this Redis (default: an embedded one)")
    parser.add_argument("--database-url", help="use this PostgreSQL server (default: embedded)")
    parser.add_argument("--cpu-seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=5000, help="chat events/s fed to the worker")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long it is fed")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    log_progress()
    conditions = report.machine()
    log.info("normalise + score + match, one core, %.0f s ...", args.cpu_seconds)
    analysis = measure_analysis(args.cpu_seconds)
    log.info("%s", analysis)
    with (
        backing_services(
            "opinion",
            redis_url=args.redis_url,
            database_url=args.database_url,
            run_id=secrets.token_hex(3),
        ) as (work_dir, urls),
    ):
        log.info("opinion worker fed %d chat/s for %.0f s ...", args.rate, args.seconds)
        worker = measure_worker(
            urls.redis_url, urls.database_url, args.rate, args.seconds, work_dir
        )
    log.info("%s", worker)
    results = {"conditions": conditions, "analysis": analysis, "worker": worker}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    print(json.dumps(results, ensure_ascii=False, indent=2))
    return 0
