"""``python -m loadtest``: start what is needed, measure, print the table, write the JSON."""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from loadtest import (
    bench,
    ceiling,
    claims,
    console_ui,
    fanout,
    frame_cost,
    opinion,
    report,
    stats_lag,
    suite,
)
from loadtest.bench import (
    INGEST_KINDS,
    Bench,
    FloorFigure,
    IngestFigure,
    LatencyFigure,
    MemoryFigure,
    Profile,
)
from loadtest.load import Window
from loadtest.pool import ClientPool
from loadtest.stack import (
    Api,
    backing_services,
    floor_server,
    free_port,
    gateway,
    livectl_env,
    log_progress,
    postmaster_pid,
    redis_client,
    scalar_sql,
)

RESULTS_DIR = Path(__file__).parent / "results"

FULL = Profile(
    name="full",
    gateway_processes=(2, 1),
    window=Window(warmup_s=2.0, duration_s=10.0),
    latency_s=15.0,
    consoles=200,
    idle_consoles=2000,
    ceiling_plain=300_000,
    ceiling_pipelined=1_500_000,
)
QUICK = Profile(
    name="quick",
    gateway_processes=(2,),
    window=Window(warmup_s=1.0, duration_s=3.0),
    latency_s=5.0,
    consoles=200,
    # Fewer sockets would show the gateway's fixed memory as per-socket cost.
    idle_consoles=2000,
    ceiling_plain=100_000,
    ceiling_pipelined=500_000,
)

log = logging.getLogger("loadtest")

# ``python -m loadtest NAME ...``; without one of these, the foundation bench.
SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {
    "suite": suite.main,
    "stats-lag": stats_lag.main,
    "claims": claims.main,
    "opinion": opinion.main,
    "console-ui": console_ui.main,
    "fanout": fanout.main,
    "frame-cost": frame_cost.main,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m loadtest",
        description="Measure livectl on this machine: Redis ceiling, ingest events/s, "
        "chat-to-console latency and memory per console socket. "
        "`python -m loadtest suite --help`: every part below in one run, one table; "
        "`python -m loadtest stats-lag --help`: stats and ranking workers' lag under load; "
        "`python -m loadtest fanout --help`: one room to 10,000 sockets; "
        "`python -m loadtest claims --help`: coupon claims/s and latency; "
        "`python -m loadtest console-ui --help`: the assistant console's smoothness; "
        "`python -m loadtest frame-cost --help`: instructions per one-event frame (callgrind).",
    )
    parser.add_argument("--quick", action="store_true", help="a ~1 minute smoke run")
    parser.add_argument("--redis-url", help="use this Redis (default: an embedded one)")
    parser.add_argument(
        "--database-url",
        help="use this PostgreSQL server, in a scratch database (default: an embedded one)",
    )
    parser.add_argument(
        "--processes",
        type=lambda text: tuple(int(n) for n in text.split(",")),
        help="gateway process counts to measure, e.g. 2,1 (default: 2,1; quick: 2)",
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR / "latest.json", help="where the JSON goes"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = SUBCOMMANDS.get(argv[0]) if argv else None
    if command is not None:
        return command(argv[1:])
    args = parse_args(argv)
    log_progress()
    profile = QUICK if args.quick else FULL
    if args.processes:
        profile = Profile(**{**profile.__dict__, "gateway_processes": args.processes})
    conditions = report.machine()  # before anything starts: the load average as found
    started = time.monotonic()
    run_id = secrets.token_hex(3)
    log_dir = args.output.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    ingest: list[IngestFigure] = []
    memory: list[MemoryFigure] = []
    floors: list[FloorFigure] = []
    latency: LatencyFigure | None = None
    with (
        backing_services(
            "loadtest", redis_url=args.redis_url, database_url=args.database_url, run_id=run_id
        ) as (work_dir, urls),
    ):
        redis = redis_client(urls.redis_url)
        server = redis.info("server")
        redis_local = urlsplit(urls.redis_url).hostname in ("127.0.0.1", "localhost")
        conditions |= {
            "redis_version": server["redis_version"],
            "redis": "external" if args.redis_url else "embedded",
            "postgres_version": str(scalar_sql(urls.database_url, "SHOW server_version")),
            "postgres": "external" if args.database_url else "embedded",
            "redis_benchmark": ceiling.redis_benchmark_version() or "no redis-benchmark",
        }
        log.info("Redis XADD ceiling ...")
        limit = ceiling.measure(
            urls.redis_url,
            redis,
            requests_plain=profile.ceiling_plain,
            requests_pipelined=profile.ceiling_pipelined,
        )
        secret = secrets.token_urlsafe(48)
        with ClientPool(bench.LOAD_PROCESSES + 1) as clients:
            context = Bench(
                redis=redis,
                database_url=urls.database_url,
                # A server's CPU is only readable when it runs on this machine.
                redis_pid=int(server["process_id"]) if redis_local else None,
                postgres_pid=None if args.database_url else postmaster_pid(work_dir / "postgres"),
                clients=clients,
                profile=profile,
                run_id=run_id,
                log_dir=log_dir,
            )
            try:
                for processes in profile.gateway_processes:
                    env = livectl_env(urls, secret, work_dir, free_port())
                    with gateway(env, processes, log_dir) as running:
                        api = Api(running.base_url, secret)
                        try:
                            memory.append(bench.measure_idle_memory(context, running, api))
                            for kind in INGEST_KINDS:
                                ingest.append(bench.measure_ingest(context, running, api, kind))
                            if latency is None:
                                latency = bench.measure_latency(context, running, api, env)
                        finally:
                            api.close()
                    env = livectl_env(urls, secret, work_dir, free_port())
                    with floor_server(env, processes, log_dir) as floor:
                        floors.append(bench.measure_server_floor(context, floor))
            finally:
                context.forget_rooms()
        redis.close()
    results = report.Results(
        conditions=conditions,
        profile=profile,
        ceiling=limit,
        ingest=ingest,
        floors=floors,
        latency=latency,
        memory=memory,
        wall_s=round(time.monotonic() - started, 1),
    )
    report.write_json(results, args.output)
    print()
    print(report.render(results))
    print(f"\nJSON: {args.output}; server logs: {log_dir}")
    return 0
