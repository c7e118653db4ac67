"""The run's conditions, the table printed at the end, and the JSON written beside it."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from loadtest.bench import IngestFigure, LatencyFigure, MemoryFigure, Profile
from loadtest.ceiling import Ceiling

# DESIGN.md, "What good looks like", and the issue that asked for this bench.
BATCHED_TARGET = 150_000
BATCHED_SHARE_TARGET = 0.35
SINGLE_TARGET = 40_000
P99_TARGET_MS = 50.0
SOCKET_TARGET_KB = 30.0


@dataclass
class Results:
    conditions: dict[str, Any]
    profile: Profile
    ceiling: Ceiling
    ingest: list[IngestFigure]
    latency: LatencyFigure | None
    memory: list[MemoryFigure]
    wall_s: float


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def livectl_commit() -> str:
    """The checked-out commit (read-only; uncommitted edits are not reflected)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 (whatever git is on PATH)
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return done.stdout.strip()


def machine() -> dict[str, Any]:
    load_1, load_5, load_15 = os.getloadavg()
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "load_average_before": [round(load_1, 2), round(load_5, 2), round(load_15, 2)],
        "python": platform.python_version(),
        "kernel": platform.release(),
        "livectl_commit": livectl_commit(),
    }


def _events(value: float) -> str:
    return f"{value:,.0f} ev/s"


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def rows(results: Results) -> list[tuple[str, str, str, str, str]]:
    """(what, gateway processes, measured, target, verdict) per line of the table."""
    ceiling = results.ceiling
    out: list[tuple[str, str, str, str, str]] = []
    if ceiling.pipelined_ops is None or ceiling.plain_ops is None:
        out.append(("Redis XADD ceiling", "-", ceiling.note, "-", "-"))
    else:
        out.append(("Redis XADD ~100 B, 50 clients, plain", "-", f"{ceiling.plain_ops:,.0f} ops/s", "-", "-"))
        out.append(("Redis XADD ~100 B, 50 clients, -P 16", "-", f"{ceiling.pipelined_ops:,.0f} ops/s", "-", "-"))
    for figure in results.ingest:
        measured = _events(figure.events_per_s)
        if ceiling.pipelined_ops:
            share = figure.events_per_s / ceiling.pipelined_ops
            measured += f" ({share:.0%} of -P 16)"
        if figure.kind == "ws_1":
            target, met = f">= {SINGLE_TARGET:,} ev/s", figure.events_per_s >= SINGLE_TARGET
        else:
            target = f">= {BATCHED_TARGET:,} ev/s, >= {BATCHED_SHARE_TARGET:.0%}"
            met = figure.events_per_s >= BATCHED_TARGET and (
                not ceiling.pipelined_ops
                or figure.events_per_s / ceiling.pipelined_ops >= BATCHED_SHARE_TARGET
            )
        if figure.error_count or figure.stored_events != figure.accepted_total:
            met = False
        out.append((f"Ingest {figure.label}", str(figure.gateway_processes), measured, target, _verdict(met)))
    latency = results.latency
    if latency is not None:
        complete = latency.consoles_complete == latency.consoles
        out.append(
            (
                f"Chat to console p50/p99/max, {latency.rate_per_s:,} ev/s, {latency.consoles} consoles",
                str(latency.gateway_processes),
                f"{latency.p50_ms} / {latency.p99_ms} / {latency.max_ms} ms",
                f"p99 <= {P99_TARGET_MS:.0f} ms",
                _verdict(latency.p99_ms <= P99_TARGET_MS and complete),
            )
        )
        out.append(
            (
                "  consoles that got every event, once, in order",
                str(latency.gateway_processes),
                f"{latency.consoles_complete}/{latency.consoles} "
                f"(each got {latency.received_min:,}..{latency.received_max:,} of {latency.sent:,})",
                "all",
                _verdict(complete),
            )
        )
        lag = ", ".join(f"{name} {ms} ms" for name, ms in sorted(latency.worker_lag_max_ms.items()))
        out.append(("  worker lag, max (stream head - last delivered)", "-", lag, "-", "-"))
    for memory in results.memory:
        out.append(
            (
                f"Memory per idle console ({memory.sockets:,} sockets)",
                str(memory.gateway_processes),
                f"{memory.per_socket_kib:.1f} KiB",
                f"<= {SOCKET_TARGET_KB:.0f} KB",
                _verdict(memory.per_socket_kib <= SOCKET_TARGET_KB and memory.still_open == memory.sockets),
            )
        )
    return out


def cpu_rows(results: Results) -> list[tuple[str, str, str]]:
    """Where the cores went in each measurement: (what, gateway processes, cores per process group)."""
    out = [
        (f.label, str(f.gateway_processes), _cores(f.cpu_cores)) for f in results.ingest
    ]
    if results.latency is not None:
        out.append(("Chat to console", str(results.latency.gateway_processes), _cores(results.latency.cpu_cores)))
    return out


def _cores(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} {cores:.2f}" for name, cores in cpu.items())


def _table(header: tuple[str, ...], lines: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in (header, *lines)) for i in range(len(header))]
    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in lines)])


def render(results: Results) -> str:
    c = results.conditions
    conditions = (
        f"{c['cores']} cores ({c['cpu']}), load average before {c['load_average_before']}, "
        f"Python {c['python']}, Redis {c['redis_version']} ({c['redis']}), "
        f"PostgreSQL {c['postgres_version']} ({c['postgres']}), {c['redis_benchmark']}, "
        f"gateway processes {list(results.profile.gateway_processes)}, "
        f"livectl {c['livectl_commit']}, profile {results.profile.name}, "
        f"run took {results.wall_s:.0f} s"
    )
    return "\n\n".join(
        [
            conditions,
            _table(("measurement", "gw procs", "measured", "target", "verdict"), rows(results)),
            "CPU used during each measurement window, in cores:\n\n"
            + _table(("measurement", "gw procs", "cores"), cpu_rows(results)),
        ]
    )


def write_json(results: Results, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(asdict(results), option=orjson.OPT_INDENT_2))
