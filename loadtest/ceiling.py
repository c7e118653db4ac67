"""What Redis itself does on this machine: XADD of ~100 B from redis-benchmark, 50 clients.

Run against the same Redis the system uses, so the ingest figures can be read as a share of
what the store could take at best (``-P 16``) or one command per round trip (plain).
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from dataclasses import dataclass
from urllib.parse import urlsplit

from redis import Redis

KEY = "lc:loadtest:ceiling"
_CLIENTS = 50
_FIELD = "x" * 100
_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Ceiling:
    plain_ops: float | None
    pipelined_ops: float | None  # -P 16
    note: str


def redis_benchmark_version() -> str | None:
    executable = shutil.which("redis-benchmark")
    if executable is None:
        return None
    out = subprocess.run(
        [executable, "--version"], capture_output=True, text=True, check=False
    ).stdout
    return out.strip() or None


def measure(
    redis_url: str, redis: Redis, *, requests_plain: int, requests_pipelined: int
) -> Ceiling:
    executable = shutil.which("redis-benchmark")
    if executable is None:
        return Ceiling(
            None, None, "redis-benchmark not found (Debian: apt install redis-tools); skipped"
        )
    url = urlsplit(redis_url)
    base = [
        executable,
        "-h", url.hostname or "127.0.0.1",
        "-p", str(url.port or 6379),
        "--dbnum", url.path.lstrip("/") or "0",
        "-c", str(_CLIENTS),
        "--csv",
    ]  # fmt: skip
    if url.password:
        base += ["-a", url.password, "--no-auth-warning"]
    command = ["XADD", KEY, "MAXLEN", "~", "100000", "*", "f", _FIELD]
    try:
        plain = _rps([*base, "-n", str(requests_plain), *command])
        pipelined = _rps([*base, "-n", str(requests_pipelined), "-P", "16", *command])
    finally:
        redis.delete(KEY)
    return Ceiling(plain, pipelined, f"XADD of {len(_FIELD)} B, {_CLIENTS} clients")


def _rps(argv: list[str]) -> float:
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=_TIMEOUT_S)
    rows = list(csv.DictReader(done.stdout.splitlines()))
    if not rows:
        raise RuntimeError(f"redis-benchmark printed no result: {done.stdout} {done.stderr}")
    return float(rows[-1]["rps"])
