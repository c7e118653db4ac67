"""The run's conditions, the table printed at the end, and the JSON written beside it."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from loadtest.bench import FloorFigure, IngestFigure, LatencyFigure, MemoryFigure, Profile
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
    floors: list[FloorFigure]
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
            ["git", "rev-parse", "--short", "HEAD"],
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


def verdict(met: bool | None) -> str:
    """A row's verdict against its target; "-" for a row with no target."""
    return "-" if met is None else "met" if met else "MISSED"


def rows(results: Results) -> list[tuple[str, str, str, str, str]]:
    """(what, gateway processes, measured, target, verdict) per line of the table."""
    ceiling = results.ceiling
    out: list[tuple[str, str, str, str, str]] = []
    if ceiling.pipelined_ops is None or ceiling.plain_ops is None:
        out.append(("Redis XADD ceiling", "-", ceiling.note, "-", "-"))
    else:
        out.append(
            (
                "Redis XADD ~100 B, 50 clients, plain",
                "-",
                f"{ceiling.plain_ops:,.0f} ops/s",
                "-",
                "-",
            )
        )
        out.append(
            (
                "Redis XADD ~100 B, 50 clients, -P 16",
                "-",
                f"{ceiling.pipelined_ops:,.0f} ops/s",
                "-",
                "-",
            )
        )
    for figure in results.ingest:
        measured = _events(figure.events_per_s)
        if ceiling.pipelined_ops:
            share = figure.events_per_s / ceiling.pipelined_ops
            measured += f" ({share:.0%} of -P 16)"
        measured += f", {figure.gateway_us_per_event:g} µs gateway CPU/event"
        if figure.kind == "ws_1":
            target, met = f">= {SINGLE_TARGET:,} ev/s", figure.events_per_s >= SINGLE_TARGET
            floor = _floor(results, figure.gateway_processes)
            if floor is not None and floor.frames_per_s:
                measured += f"; {figure.events_per_s / floor.frames_per_s:.0%} of the server floor"
        else:
            target = f">= {BATCHED_TARGET:,} ev/s, >= {BATCHED_SHARE_TARGET:.0%}"
            met = figure.events_per_s >= BATCHED_TARGET and (
                not ceiling.pipelined_ops
                or figure.events_per_s / ceiling.pipelined_ops >= BATCHED_SHARE_TARGET
            )
        if figure.error_count:
            measured += f"; {figure.error_count:,} errors"
        if figure.stored_events != figure.accepted_total:
            measured += f"; stored {figure.stored_events:,} != acked {figure.accepted_total:,}"
        met = met and not figure.error_count and figure.stored_events == figure.accepted_total
        out.append(
            (
                f"Ingest {figure.label}",
                str(figure.gateway_processes),
                measured,
                target,
                verdict(met),
            )
        )
    for floor in results.floors:
        errors = f"; {floor.error_count:,} errors" if floor.error_count else ""
        out.append(
            (
                "  WS server floor: the gateway's protocol answering 1-event frames, no work",
                str(floor.server_processes),
                f"{floor.frames_per_s:,.0f} frames/s, {floor.server_us_per_frame:g} µs server "
                f"CPU/frame{errors}",
                "-",
                "-",
            )
        )
    latency = results.latency
    if latency is not None:
        complete = latency.consoles_complete == latency.consoles
        out.append(
            (
                f"Chat to console p50/p99/max, {latency.rate_per_s:,} ev/s, "
                f"{latency.consoles} consoles",
                str(latency.gateway_processes),
                f"{latency.p50_ms} / {latency.p99_ms} / {latency.max_ms} ms",
                f"p99 <= {P99_TARGET_MS:.0f} ms",
                verdict(latency.p99_ms <= P99_TARGET_MS and complete),
            )
        )
        out.append(
            (
                "  consoles that got every event, once, in order",
                str(latency.gateway_processes),
                f"{latency.consoles_complete}/{latency.consoles} (each got "
                f"{latency.received_min:,}..{latency.received_max:,} of {latency.sent:,})",
                "all",
                verdict(complete),
            )
        )
        archived = "unreadable" if latency.archived is None else f"{latency.archived:,}"
        out.append(
            (
                "  accepted / archived in PostgreSQL",
                "",
                f"{latency.accepted:,} of {latency.sent:,} / {archived}",
                "all",
                verdict(latency.accepted == latency.sent == latency.archived),
            )
        )
        stages = ", ".join(
            f"{name.replace('_', '-')} {p50:.0f}/{p99:.0f}"
            for name, (p50, p99) in latency.stages_ms.items()
        )
        out.append(("  stages p50/p99 ms: write>stream>published>received", "", stages, "", ""))
        lag = ", ".join(f"{name} {ms} ms" for name, ms in sorted(latency.worker_lag_max_ms.items()))
        out.append(("  worker lag, max (stream head - last delivered)", "", lag, "", ""))
    for memory in results.memory:
        out.append(
            (
                f"Memory per idle console ({memory.sockets:,} sockets)",
                str(memory.gateway_processes),
                f"{memory.per_socket_kib:.1f} KiB",
                f"<= {SOCKET_TARGET_KB:.0f} KB",
                verdict(
                    memory.per_socket_kib <= SOCKET_TARGET_KB
                    and memory.still_open == memory.sockets
                ),
            )
        )
    return out


# "worker": every consumer group but the console relay's, which the latency measurement runs in
# a process of its own ("relay"), as `livectl up` does.
CPU_COLUMNS = (
    "gateway",
    "redis",
    "postgres",
    "worker",
    "relay",
    "clients",
    "other",
    "machine",
    "steal",
)


def cpu_rows(results: Results) -> list[tuple[str, ...]]:
    """Cores used during each measurement window, per process group (see CPU_COLUMNS)."""
    measured = [(f.label, f.gateway_processes, f.cpu_cores) for f in results.ingest]
    measured += [
        ("WS server floor (gateway: the floor server)", f.server_processes, f.cpu_cores)
        for f in results.floors
    ]
    if results.latency is not None:
        latency = results.latency
        measured.append(("Chat to console", latency.gateway_processes, latency.cpu_cores))
    return [
        (label, str(processes), *(_cores(cpu.get(name)) for name in CPU_COLUMNS))
        for label, processes, cpu in measured
    ]


def _floor(results: Results, processes: int) -> FloorFigure | None:
    return next((f for f in results.floors if f.server_processes == processes), None)


def _cores(cores: float | None) -> str:
    return "-" if cores is None else f"{cores:.2f}"


def table(header: tuple[str, ...], lines: Sequence[tuple[str, ...]]) -> str:
    """A Markdown table."""
    widths = [max(len(row[i]) for row in (header, *lines)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return (
            "| "
            + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            + " |"
        )

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(header), rule, *(line(row) for row in lines)])


# Other work above this during a window (cores) makes its figures unreliable.
DISTURBED_CORES = 0.25


def disturbed(results: Results) -> list[str]:
    """The measurements during which something else used a noticeable share of the CPU."""
    windows = [(f"{f.label} ({f.gateway_processes}p)", f.cpu_cores) for f in results.ingest]
    if results.latency is not None:
        windows.append(("Chat to console", results.latency.cpu_cores))
    return [
        f"{label}: {cpu['other']:.2f} cores"
        for label, cpu in windows
        if cpu.get("other", 0.0) > DISTURBED_CORES
    ]


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
    noisy = disturbed(results)
    warning = (
        "WARNING: other work on this machine took CPU during: "
        + "; ".join(noisy)
        + ". Those figures understate livectl; rerun when the machine is idle."
        if noisy
        else f"No other work took more than {DISTURBED_CORES} cores during any measurement window."
    )
    return "\n\n".join(
        [
            conditions,
            warning,
            table(("measurement", "gw procs", "measured", "target", "verdict"), rows(results)),
            "Cores used during each measurement window (other: everything else on the machine):"
            "\n\n" + table(("measurement", "gw procs", *CPU_COLUMNS), cpu_rows(results)),
        ]
    )


def write_json(results: Results, path: Path) -> None:
    """The results, and the table's rows for ``python -m loadtest suite``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table_rows = [
        [f"{name} ({processes} gateway processes)" if processes.isdigit() else name, *rest]
        for name, processes, *rest in rows(results)
    ]
    document = asdict(results) | {"rows": table_rows}
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
