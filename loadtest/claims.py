"""``python -m loadtest claims``: coupon claims per second and claim latency, with the
oversell check, from one run.

Phases, each against its own drop in one live room:

1. Redis ceiling: the claim script called directly with batches of 2,000 claims.
2. Throughput over claim sockets: client processes, each with a few sockets sending arrays of
   claims (each answered before the next), all claims by distinct users. The clients are
   ``wire``'s callback-driven sockets, so the gateway, not the load, sets the pace.
3. Throughput over REST: one claim per request over keep-alive connections.
4. Latency at a paced rate (default 5,000 claims/s): single-claim frames, then frames of 10.
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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from livectl.auth.tokens import Role
from livectl.bus.keys import RoomKeys
from livectl.coupons.claims import ClaimRequest, CouponScripts
from livectl.kit.clock import now_ms
from loadtest import pool, report, wire
from loadtest.bench import CpuWatch
from loadtest.pool import ClientPool, Job
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
# Keep-alive connections per client process for REST: HTTP/1.1 answers one request at a time.
_REST_CONNECTIONS = 32
_DRAIN_TIMEOUT_S = 30.0
_PACING_TICK_S = 0.001
_CPU_SHOWN = ("gateway", "worker", "clients", "other")


@dataclass(frozen=True)
class Load:
    """One client process's claims: over ``sockets`` claim sockets (frames of ``frame``
    claims) or, with ``rest``, as many keep-alive connections posting one claim each."""

    host: str
    port: int
    path: str  # the claim socket's path with its token, or the REST claim route
    token: str
    coupon: str
    prefix: str
    connections: int
    duration_s: float
    frame: int = 1
    rest: bool = False
    frames_per_s: float = 0.0  # paced, over all this process's connections; 0: closed loop


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class _Tally:
    """What a client process saw: a latency per claim, the statuses, the codes granted."""

    def __init__(self, load: Load) -> None:
        self.load = load
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.granted: list[tuple[str, str]] = []
        self.in_window = 0  # claims answered before the time was up: the rate counts these
        self.running = False
        self.end = 0.0
        self.outstanding = 0
        self.drained = asyncio.Event()
        self._sequence = 0

    def next_users(self) -> list[str]:
        first = self._sequence
        self._sequence += self.load.frame
        return [f"{self.load.prefix}-{n}" for n in range(first, self._sequence)]

    def record(self, users: list[str], results: list[dict[str, Any]], due: float) -> None:
        answered = time.perf_counter()
        self.outstanding -= 1
        if not self.running and not self.outstanding:
            self.drained.set()
        if answered <= self.end:
            self.in_window += len(users)
        elapsed_ms = (answered - due) * 1000
        for user, result in zip(users, results, strict=True):
            self.latencies.append(elapsed_ms)
            status = int(result["status"])
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 201:
                self.granted.append((user, result["code"]))

    def as_dict(self) -> dict[str, Any]:
        return {
            "latencies": self.latencies,
            "statuses": self.statuses,
            "granted": self.granted,
            "in_window": self.in_window,
        }


class _Claimer:
    """One connection. Answers come back in order, so the claims each one answers are the
    oldest sent; in a closed loop an answer sends the next claims from inside the callback."""

    def __init__(self, tally: _Tally) -> None:
        self.tally = tally
        self.sent: deque[tuple[float, list[str]]] = deque()
        self.write: Callable[[bytes], None] | None = None

    def send(self, due: float) -> None:
        assert self.write is not None
        load = self.tally.load
        users = self.tally.next_users()
        self.sent.append((due, users))
        self.tally.outstanding += 1
        if load.rest:
            body = orjson.dumps({"user_id": users[0]})
            self.write(wire.encode_post(load.host, load.port, load.path, load.token, body))
            return
        claims = [{"coupon_id": load.coupon, "user_id": user} for user in users]
        self.write(wire.encode_frame(orjson.dumps(claims if load.frame > 1 else claims[0])))

    def on_frame(self, body: bytes) -> None:
        reply = orjson.loads(body)
        self._answered(reply["results"] if self.tally.load.frame > 1 else [reply])

    def on_response(self, status: int, body: bytes) -> None:
        self._answered([{"status": status, **orjson.loads(body)}])

    def _answered(self, results: list[dict[str, Any]]) -> None:
        due, users = self.sent.popleft()
        self.tally.record(users, results, due)
        if self.tally.running and not self.tally.load.frames_per_s:
            self.send(time.perf_counter())


def claim_client(load: Load) -> dict[str, Any]:
    """One client process: its connections claim from the common start until the time is up."""
    return pool.run(_claim_client(load))


async def _claim_client(load: Load) -> dict[str, Any]:
    tally = _Tally(load)
    claimers = [_Claimer(tally) for _ in range(load.connections)]
    clients = await pool.connect_each(load.host, load.port, load.path, claimers, rest=load.rest)
    for claimer, client in zip(claimers, clients, strict=True):
        claimer.write = client.send
    await pool.ready_then_go()
    tally.running = True
    started = time.perf_counter()
    tally.end = started + load.duration_s
    if load.frames_per_s:
        await _paced(claimers, load.frames_per_s, started, tally.end)
    else:
        for claimer in claimers:
            claimer.send(started)
        await asyncio.sleep(load.duration_s)
    tally.running = False
    if tally.outstanding:
        try:
            await asyncio.wait_for(tally.drained.wait(), _DRAIN_TIMEOUT_S)
        except TimeoutError:
            raise RuntimeError(
                f"{tally.outstanding} claim answers missing {_DRAIN_TIMEOUT_S:.0f} s after"
            ) from None
    for client in clients:
        client.close()
    return tally.as_dict()


async def _paced(claimers: list[_Claimer], frames_per_s: float, start: float, end: float) -> None:
    """Send frames round-robin at a steady rate. Latency counts from when a frame was due,
    not when it went out: a client that falls behind shows it (no coordinated omission)."""
    interval = 1 / frames_per_s
    due = start
    turn = 0
    while due < end:
        now = time.perf_counter()
        while due <= now and due < end:
            claimers[turn % len(claimers)].send(due)
            turn += 1
            due += interval
        # The event loop's timers tick in milliseconds: a shorter sleep would spin, taking the
        # CPU the gateway needs. Frames that fall due meanwhile go out together on waking.
        await asyncio.sleep(max(_PACING_TICK_S, due - time.perf_counter()))


@dataclass
class Phase:
    name: str
    coupon: str
    claims: int
    granted: list[tuple[str, str]]
    statuses: dict[int, int]
    in_window: int  # answered within the phase's time
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu: dict[str, float] = field(default_factory=dict)  # cores used by each group, over the phase

    @property
    def per_s(self) -> float:
        return self.in_window / self.seconds

    def cpu_text(self) -> str:
        if not self.cpu:
            return ""
        cores = ", ".join(f"{name} {self.cpu[name]:.2f}" for name in _CPU_SHOWN)
        per_claim = self.cpu["gateway"] / self.per_s * 1e6 if self.per_s else float("nan")
        return f"cores: {cores}; {per_claim:.0f} µs gateway CPU per claim"


def merge(
    name: str, coupon: str, parts: list[dict[str, Any]], seconds: float, cpu: dict[str, float]
) -> Phase:
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
        sum(part["in_window"] for part in parts),
        seconds,
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        cpu,
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
        count,
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
        ClientPool(args.clients) as clients,
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

                def run_phase(
                    name: str, quantity: int, *, rest: bool = False, **load: Any
                ) -> Phase:
                    coupon = new_drop(quantity)
                    path = (
                        f"/v1/rooms/{room}/coupons/{coupon}/claims"
                        if rest
                        else f"/v1/rooms/{room}/claims?token={player}"
                    )
                    duration_s = load.setdefault("duration_s", args.seconds)
                    jobs: list[Job] = [
                        (
                            claim_client,
                            Load(
                                running.host,
                                running.port,
                                path,
                                player,
                                coupon,
                                f"{name[:4]}-{i}",
                                rest=rest,
                                **load,
                            ),
                        )
                        for i in range(args.clients)
                    ]
                    launch = clients.launch(jobs, ready_timeout_s=60)
                    go = launch.go()
                    watch = CpuWatch(
                        {"gateway": running.pids, "worker": worker.pids, "clients": clients.pids}
                    )
                    time.sleep(max(0.0, go - time.time()))
                    watch.begin()
                    time.sleep(duration_s)
                    watch.stop()
                    parts = launch.results(60)
                    return checked(merge(name, coupon, parts, duration_s, watch.cpu), quantity)

                big = 1_000_000
                log.info("Redis ceiling ...")
                ceiling = checked(
                    asyncio.run(redis_ceiling(urls.redis_url, room, new_drop(big), 3.0)), big
                )
                log.info("socket throughput ...")
                sockets = run_phase(
                    "claim sockets, frames of 200 claims", big, connections=4, frame=200
                )
                log.info("REST throughput ...")
                rest = run_phase(
                    f"REST, one claim per request, {args.clients}x{_REST_CONNECTIONS} connections",
                    big,
                    rest=True,
                    connections=_REST_CONNECTIONS,
                )
                log.info("paced latency ...")
                paced = run_phase(
                    f"paced {args.rate:,.0f} claims/s, one claim per frame",
                    big,
                    connections=25,
                    frames_per_s=args.rate / args.clients,
                )
                # A bridge forwarding viewers' claims in small batches: same claim rate, a tenth
                # of the frames.
                paced_batches = run_phase(
                    f"paced {args.rate:,.0f} claims/s, frames of 10 claims",
                    big,
                    connections=25,
                    frame=10,
                    frames_per_s=args.rate / args.clients / 10,
                )
                log.info("contention ...")
                race = run_phase(
                    "contention: drop of 1,000, everyone racing",
                    1_000,
                    connections=4,
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
                        "cpu_cores": phase.cpu,
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
        if phase.cpu:
            print(f"    {phase.cpu_text()}")
    print(f"\nJSON: {args.output}")
    return 0 if all(check.startswith("OK") for check in checks) else 1
