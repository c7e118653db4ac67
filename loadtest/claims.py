"""``python -m loadtest claims``: coupon claims per second and claim latency, with the
oversell check, from one run.

Phases, each against its own drop in one live room:

1. Redis ceiling: the claim script called directly with batches of 2,000 claims.
2. Throughput over claim sockets: client processes, each with a few sockets sending arrays of
   claims (each answered before the next), all claims by distinct users.
3. Throughput over REST: one claim per request, 64 in flight.
4. Latency at a paced rate (default 5,000 claims/s) over single-claim socket frames.
5. Contention: every client racing for a drop of 1,000 (limit 1 per user) until it sells out.

After each phase, the oversell check: for its drop, the 201 answers, Redis and the PostgreSQL ledger
(once the worker has written it) agree, no ordinal or user twice, nothing past the quantity.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis
from websockets.asyncio.client import connect

from livectl.auth.tokens import Role
from livectl.bus.keys import RoomKeys
from livectl.coupons.claims import ClaimRequest, CouponScripts
from livectl.kit import codec
from livectl.kit.clock import now_ms
from loadtest import report
from loadtest.stack import (
    Api,
    Child,
    backing_services,
    free_port,
    gateway,
    livectl_env,
    log_progress,
    scalar_sql,
)

log = logging.getLogger("loadtest")

DROP = {"title": "bench", "kind": "amount_off", "value": 100, "duration_s": 3600}
RESULTS = Path(__file__).parent / "results" / "claims.json"
THROUGHPUT_TARGET = 20_000
P99_TARGET_MS = 20.0


@dataclass(frozen=True)
class Load:
    url: str
    coupon: str
    prefix: str
    sockets: int
    frame: int
    duration_s: float
    frames_per_s: float = 0.0  # per process when paced; 0: closed loop (each frame answered)


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def socket_client(load: Load) -> dict[str, Any]:
    """One client process: its sockets claim until the time is up."""
    return asyncio.run(_socket_client(load))


async def _socket_client(load: Load) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    granted: list[tuple[str, str]] = []
    deadline = time.perf_counter() + load.duration_s
    sequence = iter(range(10**9))

    async def one_socket(index: int) -> None:
        interval = load.sockets / load.frames_per_s if load.frames_per_s else 0.0
        next_send = time.perf_counter() + interval * index / load.sockets
        async with connect(load.url, max_size=None) as socket:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                if interval:
                    await asyncio.sleep(max(0.0, next_send - started))
                    # Latency counts from when the frame was due, not when it went out: a
                    # socket that falls behind shows it (no coordinated omission).
                    started = next_send
                    next_send += interval
                users = [f"{load.prefix}-{next(sequence)}" for _ in range(load.frame)]
                claims = [{"coupon_id": load.coupon, "user_id": user} for user in users]
                await socket.send(codec.dumps_str(claims if load.frame > 1 else claims[0]))
                reply = codec.loads(await socket.recv())
                elapsed_ms = (time.perf_counter() - started) * 1000
                results = reply["results"] if load.frame > 1 else [reply]
                for user, result in zip(users, results, strict=True):
                    latencies.append(elapsed_ms)
                    statuses[result["status"]] = statuses.get(result["status"], 0) + 1
                    if result["status"] == 201:
                        granted.append((user, result["code"]))

    await asyncio.gather(*(one_socket(i) for i in range(load.sockets)))
    return {"latencies": latencies, "statuses": statuses, "granted": granted}


@dataclass(frozen=True)
class RestLoad:
    base_url: str
    token: str
    room: str
    coupon: str
    prefix: str
    duration_s: float


# httpx's async pool degrades steeply past a few requests in flight per client (measured here:
# /healthz at 742/s with 8 in flight, 114/s with 64), so REST load is several clients with 8.
_REST_IN_FLIGHT = 8


def rest_client(load: RestLoad) -> dict[str, Any]:
    """One client process claiming over REST, one claim per request."""

    async def run() -> dict[str, Any]:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        granted: list[tuple[str, str]] = []
        deadline = time.perf_counter() + load.duration_s
        sequence = iter(range(10**9))
        async with httpx.AsyncClient(
            base_url=load.base_url,
            headers={"authorization": f"Bearer {load.token}"},
            limits=httpx.Limits(max_connections=_REST_IN_FLIGHT),
            timeout=30,
        ) as client:

            async def worker() -> None:
                while time.perf_counter() < deadline:
                    user = f"{load.prefix}-{next(sequence)}"
                    started = time.perf_counter()
                    response = await client.post(
                        f"/v1/rooms/{load.room}/coupons/{load.coupon}/claims",
                        json={"user_id": user},
                    )
                    latencies.append((time.perf_counter() - started) * 1000)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    if response.status_code == 201:
                        granted.append((user, response.json()["code"]))

            await asyncio.gather(*(worker() for _ in range(_REST_IN_FLIGHT)))
        return {"latencies": latencies, "statuses": statuses, "granted": granted}

    return asyncio.run(run())


@dataclass
class Phase:
    name: str
    coupon: str
    claims: int
    granted: list[tuple[str, str]]
    statuses: dict[int, int]
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_s(self) -> float:
        return self.claims / self.seconds


def merge(name: str, coupon: str, parts: list[dict[str, Any]], seconds: float) -> Phase:
    latencies = [v for part in parts for v in part["latencies"]]
    statuses: dict[int, int] = {}
    for part in parts:
        for status, count in part["statuses"].items():
            statuses[int(status)] = statuses.get(int(status), 0) + count
    granted = [g for part in parts for g in part["granted"]]
    return Phase(
        name,
        coupon,
        len(latencies),
        granted,
        statuses,
        seconds,
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
    )


async def redis_ceiling(redis_url: str, room: str, coupon: str, duration_s: float) -> Phase:
    redis = Redis.from_url(redis_url)
    scripts = CouponScripts(redis)
    latencies: list[float] = []
    granted: list[tuple[str, str]] = []
    statuses: dict[int, int] = {}
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < duration_s:
        requests = [ClaimRequest(coupon, f"direct-{count + i}", None) for i in range(2000)]
        began = time.perf_counter()
        answers = await scripts.claim(room, requests, now_ms())
        latencies.append((time.perf_counter() - began) * 1000)
        for request, answer in zip(requests, answers, strict=True):
            text = answer.decode()
            status = 201 if text.startswith("ok\t") else 409
            statuses[status] = statuses.get(status, 0) + 1
            if status == 201:
                granted.append((request.user_id, text.split("\t")[2]))
        count += len(requests)
    seconds = time.perf_counter() - started
    await redis.aclose()
    return Phase(
        "redis ceiling (Lua, batches of 2,000)",
        coupon,
        count,
        granted,
        statuses,
        seconds,
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
    )


def oversell_check(
    database_url: str, redis_url: str, room: str, phase: Phase, quantity: int
) -> str:
    redis = Redis.from_url(redis_url)

    async def claimed() -> int:
        value = await redis.hget(RoomKeys(room).coupon(phase.coupon), "claimed")
        await redis.aclose()
        return int(value or 0)

    in_redis = asyncio.run(claimed())

    def sql(statement: str) -> int:
        return int(str(scalar_sql(database_url, statement, d=phase.coupon)))

    deadline = time.monotonic() + 120
    while True:
        rows = sql("SELECT count(*) FROM coupon_claims WHERE drop_id = :d")
        if rows >= in_redis or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    distinct = sql(
        "SELECT count(DISTINCT ordinal) + count(DISTINCT user_id) - 2 * count(*) "
        "FROM coupon_claims WHERE drop_id = :d"
    )
    top = sql("SELECT coalesce(max(ordinal), 0) FROM coupon_claims WHERE drop_id = :d")
    users = {user for user, _ in phase.granted}
    checks = {
        "answers == redis": len(phase.granted) == in_redis,
        "redis == ledger": in_redis == rows,
        "<= quantity": rows <= quantity and top <= quantity,
        "no ordinal or user twice": distinct == 0 and len(users) == len(phase.granted),
    }
    verdict = (
        "OK"
        if all(checks.values())
        else "FAILED " + str([name for name, ok in checks.items() if not ok])
    )
    return (
        f"{verdict}: {len(phase.granted)} answered 201, {in_redis} in Redis, {rows} ledger rows, "
        f"quantity {quantity}"
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest claims", description=__doc__)
    parser.add_argument("--redis-url")
    parser.add_argument("--database-url")
    parser.add_argument("--processes", type=int, default=2, help="gateway processes")
    parser.add_argument("--clients", type=int, default=2, help="load client processes")
    parser.add_argument("--seconds", type=float, default=8.0, help="per phase")
    parser.add_argument("--rate", type=float, default=5000.0, help="paced claims/s")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def rows(phases: list[Phase], checks: list[str], rate: float) -> list[tuple[str, str, str, str]]:
    """(what, measured, target, verdict) per line of the table; ``phases`` in the order the
    run makes them: ceiling, sockets, REST, paced one per frame, paced frames of 10, race."""
    ceiling, sockets, rest, *paced, race = phases

    def figures(phase: Phase) -> str:
        return f"{phase.per_s:,.0f} claims/s, p50 / p99 {phase.p50_ms:.1f} / {phase.p99_ms:.1f} ms"

    out = [
        (ceiling.name, figures(ceiling), "-", report.verdict(None)),
        (
            sockets.name,
            f"{figures(sockets)} ({sockets.per_s / ceiling.per_s:.0%} of the ceiling)",
            f">= {THROUGHPUT_TARGET:,} claims/s",
            report.verdict(sockets.per_s >= THROUGHPUT_TARGET),
        ),
        (rest.name, figures(rest), "-", report.verdict(None)),
    ]
    for phase in paced:
        # Paced below the rate asked means the gateway could not keep up: not a pass.
        kept_up = phase.per_s >= 0.95 * rate
        out.append(
            (
                phase.name,
                figures(phase),
                f"p99 <= {P99_TARGET_MS:.0f} ms at {rate:,.0f}/s",
                report.verdict(kept_up and phase.p99_ms <= P99_TARGET_MS),
            )
        )
    granted = race.statuses.get(201, 0)
    out.append(
        (race.name, f"{granted:,} granted", "exactly 1,000", report.verdict(granted == 1000))
    )
    failed = [
        phase.name
        for phase, check in zip(phases, checks, strict=True)
        if not check.startswith("OK")
    ]
    out.append(
        (
            "oversell check: answers, Redis and the ledger agree, nothing past quantity",
            "every phase" if not failed else "failed: " + "; ".join(failed),
            "every phase",
            report.verdict(not failed),
        )
    )
    return out


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    log_progress()
    load_before = os.getloadavg()
    run_id = secrets.token_hex(3)
    with (
        backing_services(
            "claims", redis_url=args.redis_url, database_url=args.database_url, run_id=run_id
        ) as (work_dir, urls),
        ProcessPoolExecutor(args.clients) as pool,
    ):
        secret = secrets.token_urlsafe(48)
        env = livectl_env(urls, secret, work_dir, free_port())
        worker = Child("claims-worker", ["worker"], env, work_dir)
        try:
            with gateway(env, args.processes, work_dir) as running:
                api = Api(running.base_url, secret)
                room = f"bench-claims-{run_id}"
                api.live_room(room)
                admin = httpx.Client(
                    base_url=running.base_url,
                    headers={"authorization": f"Bearer {api.token(Role.CONTROLLER, room)}"},
                    timeout=30,
                )
                player = api.token(Role.PLAYER, room)
                ws_url = f"ws://{running.host}:{running.port}/v1/rooms/{room}/claims?token={player}"

                def new_drop(quantity: int) -> str:
                    response = admin.post(
                        f"/v1/rooms/{room}/coupons", json=DROP | {"quantity": quantity}
                    )
                    response.raise_for_status()
                    coupon: str = response.json()["id"]
                    return coupon

                checks: list[str] = []

                def checked(phase: Phase, quantity: int) -> Phase:
                    # Waits for the ledger to catch up, so its writes do not load the next phase.
                    checks.append(
                        oversell_check(urls.database_url, urls.redis_url, room, phase, quantity)
                    )
                    return phase

                def socket_phase(name: str, quantity: int, **load: Any) -> Phase:
                    coupon = new_drop(quantity)
                    loads = [
                        Load(ws_url, coupon, f"{name[:4]}-{i}", **load) for i in range(args.clients)
                    ]
                    started = time.perf_counter()
                    parts = list(pool.map(socket_client, loads))
                    return checked(
                        merge(name, coupon, parts, time.perf_counter() - started), quantity
                    )

                big = 1_000_000
                log.info("Redis ceiling ...")
                ceiling = checked(
                    asyncio.run(redis_ceiling(urls.redis_url, room, new_drop(big), 3.0)), big
                )
                log.info("socket throughput ...")
                sockets = socket_phase(
                    "claim sockets, frames of 200 claims",
                    big,
                    sockets=4,
                    frame=200,
                    duration_s=args.seconds,
                )
                log.info("REST throughput ...")
                coupon = new_drop(big)
                rest_loads = [
                    RestLoad(running.base_url, player, room, coupon, f"rest-{i}", args.seconds)
                    for i in range(args.clients)
                ]
                started = time.perf_counter()
                rest = checked(
                    merge(
                        f"REST, one claim per request, {args.clients}x{_REST_IN_FLIGHT} in flight",
                        coupon,
                        list(pool.map(rest_client, rest_loads)),
                        time.perf_counter() - started,
                    ),
                    big,
                )
                log.info("paced latency ...")
                paced = socket_phase(
                    f"paced {args.rate:,.0f} claims/s, one claim per frame",
                    big,
                    sockets=25,
                    frame=1,
                    duration_s=args.seconds,
                    frames_per_s=args.rate / args.clients,
                )
                # A bridge forwarding viewers' claims in small batches: same claim rate, a tenth
                # of the frames.
                paced_batches = socket_phase(
                    f"paced {args.rate:,.0f} claims/s, frames of 10 claims",
                    big,
                    sockets=25,
                    frame=10,
                    duration_s=args.seconds,
                    frames_per_s=args.rate / args.clients / 10,
                )
                log.info("contention ...")
                race = socket_phase(
                    "contention: drop of 1,000, everyone racing",
                    1_000,
                    sockets=4,
                    frame=100,
                    duration_s=2.0,
                )
                phases = [ceiling, sockets, rest, paced, paced_batches, race]
                api.close()
                admin.close()
        finally:
            worker.stop()
    conditions = {
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "cores": os.cpu_count(),
        "gateway_processes": args.processes,
        "client_processes": args.clients,
    }
    table_rows = rows(phases, checks, args.rate)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(
        orjson.dumps(
            {
                "conditions": conditions,
                "phases": [
                    {
                        "name": phase.name,
                        "claims": phase.claims,
                        "seconds": round(phase.seconds, 2),
                        "claims_per_s": round(phase.per_s),
                        "p50_ms": phase.p50_ms,
                        "p99_ms": phase.p99_ms,
                        "statuses": {str(k): v for k, v in sorted(phase.statuses.items())},
                        "oversell_check": check,
                    }
                    for phase, check in zip(phases, checks, strict=True)
                ],
                "rows": table_rows,
            },
            option=orjson.OPT_INDENT_2,
        )
    )
    print()
    print(
        f"load average before: {' '.join(f'{v:.2f}' for v in load_before)}; "
        f"after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}; cores: {os.cpu_count()}; "
        f"gateway processes: {args.processes}; client processes: {args.clients}"
    )
    print(report.table(("measurement", "measured", "target", "verdict"), table_rows))
    for phase, check in zip(phases, checks, strict=True):
        print(f"  {phase.name}: statuses {dict(sorted(phase.statuses.items()))}; {check}")
    print(f"\nJSON: {args.output}")
    return 0 if all(check.startswith("OK") for check in checks) else 1
