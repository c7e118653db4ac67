"""``python -m loadtest suite``: every measurement of the issues' targets, one table, one JSON.

Runs the parts one after another, each as its own process of its own command (so each stays
runnable alone, and one part's crash or file-descriptor limits do not take the others down):

- ``foundation`` (``python -m loadtest``): the Redis XADD ceiling, ingest three ways with the
  WebSocket server's floor, chat-to-console latency at 5,000 events/s, memory per idle console;
- ``workers`` (``stats-lag``): the stats and ranking workers' lag at full ingest speed;
- ``fan-out`` (``fanout``): 10,000 sockets on one gateway process, also with 5% not reading;
- ``claims``: claims/s and claim latency with the oversell check after every phase.

Each part writes its JSON with the rows of its table; the suite prints them as one table and
writes one JSON holding every part's.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from loadtest import report
from loadtest.stack import log_progress

log = logging.getLogger("loadtest")

RESULTS_DIR = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Part:
    name: str
    command: tuple[str, ...]  # after ``python -m loadtest``
    quick: tuple[str, ...]
    full: tuple[str, ...] = ()


PARTS = (
    Part("foundation", (), ("--quick",)),
    Part("workers", ("stats-lag",), ("--seconds", "5"), ("--seconds", "15")),
    # Shorter, the sockets that stop reading would not reach the 4008 bound within the run.
    Part("fan-out", ("fanout",), ()),
    Part("claims", ("claims",), ("--seconds", "3")),
)


@dataclass
class PartResult:
    name: str
    exit_code: int
    seconds: float
    results: dict[str, Any] | None  # the part's JSON; None when it wrote none


def rows(parts: Sequence[PartResult]) -> list[tuple[str, str, str, str, str]]:
    """(part, what, measured, target, verdict) per line of the suite's table."""
    out: list[tuple[str, str, str, str, str]] = []
    for part in parts:
        part_rows = (part.results or {}).get("rows", [])
        for name, measured, target, verdict in part_rows:
            out.append((part.name, name, measured, target, verdict))
        if part.exit_code or not part_rows:
            out.append(
                (part.name, "the part's run", f"exit code {part.exit_code}", "exit 0", "FAILED")
            )
    return out


def render(conditions: dict[str, Any], parts: Sequence[PartResult]) -> str:
    c = conditions
    lines = [
        f"{c['cores']} cores ({c['cpu']}), load average before {c['load_average_before']} and "
        f"after {c['load_average_after']}, Python {c['python']}, livectl {c['livectl_commit']}, "
        f"profile {c['profile']}; parts: "
        + ", ".join(f"{p.name} {p.seconds:.0f} s (exit {p.exit_code})" for p in parts),
    ]
    foundation = next((p.results for p in parts if p.name == "foundation" and p.results), None)
    if foundation is not None:
        # The parts run alone on the machine; other work taking CPU makes figures floors.
        noisy = [
            f"{figure['label']}: {figure['cpu_cores'].get('other', 0):.2f} cores"
            for figure in foundation.get("ingest", [])
            if figure["cpu_cores"].get("other", 0) > report.DISTURBED_CORES
        ]
        if noisy:
            lines.append("WARNING: other work took CPU during " + "; ".join(noisy))
    header = ("part", "measurement", "measured", "target", "verdict")
    lines.append(report.table(header, rows(parts)))
    return "\n\n".join(lines)


def run_part(part: Part, args: argparse.Namespace, out_dir: Path) -> PartResult:
    output = out_dir / f"{part.name}.json"
    output.unlink(missing_ok=True)
    command = [sys.executable, "-m", "loadtest", *part.command]
    command += part.quick if args.quick else part.full
    command += ["--output", str(output)]
    if args.redis_url:
        command += ["--redis-url", args.redis_url]
    if args.database_url:
        command += ["--database-url", args.database_url]
    log.info("part %s: %s", part.name, " ".join(command[2:]))
    started = time.monotonic()
    # The part's own table goes to its log; its progress (stderr) shows here as it runs.
    with (out_dir / f"{part.name}.log").open("wb") as out:
        code = subprocess.run(command, stdout=out, check=False).returncode
    results = orjson.loads(output.read_bytes()) if output.exists() else None
    return PartResult(part.name, code, time.monotonic() - started, results)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtest suite", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs of every part")
    parser.add_argument("--redis-url", help="use this Redis (default: embedded ones)")
    parser.add_argument("--database-url", help="use this PostgreSQL (default: embedded ones)")
    parser.add_argument(
        "--only", help=f"comma-separated parts, of: {', '.join(p.name for p in PARTS)}"
    )
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "suite.json")
    args = parser.parse_args(argv)
    known = {part.name for part in PARTS}
    if args.only and not set(args.only.split(",")) <= known:
        parser.error(f"--only takes parts of: {', '.join(sorted(known))}")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    log_progress()
    conditions = report.machine() | {"profile": "quick" if args.quick else "full"}
    chosen = [p for p in PARTS if not args.only or p.name in args.only.split(",")]
    out_dir = args.output.parent / "suite"
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [run_part(part, args, out_dir) for part in chosen]
    conditions["load_average_after"] = report.machine()["load_average_before"]
    table_rows = rows(parts)
    document = {
        "conditions": conditions,
        "parts": {p.name: {"exit_code": p.exit_code, "seconds": round(p.seconds, 1),
                           "results": p.results} for p in parts},
        "rows": table_rows,
    }  # fmt: skip
    args.output.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    print()
    print(render(conditions, parts))
    print(f"\nJSON: {args.output}; each part's output: {out_dir}")
    return 0 if all(p.exit_code == 0 for p in parts) else 1
