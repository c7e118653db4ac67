"""The system under test: Redis and PostgreSQL, the gateway and the worker, as separate processes.

Redis and PostgreSQL are the embedded ones unless URLs are given. Against an external
PostgreSQL the bench migrates and uses a scratch database it drops afterwards; an external
Redis should be one the bench may fill (it deletes only its own keys, but its worker follows
every room listed there).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
from redis import Redis
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from livectl.auth.tokens import ALL_ROOMS, Role, issue_token
from livectl.embedded import EmbeddedServices, ServiceUrls
from livectl.store.migrate import upgrade

log = logging.getLogger("loadtest")

_READY_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 15.0
_STARTUP_GRACE_S = 1.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# Redis and PostgreSQL


def log_progress() -> None:
    """Timestamped progress lines on stderr; the servers' and clients' chatter kept out."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("pgserver", "httpx", "alembic", "livectl.embedded"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def backing_services(
    name: str, *, redis_url: str | None, database_url: str | None, run_id: str
) -> Iterator[tuple[Path, ServiceUrls]]:
    """A scratch directory for the run, embedded servers in it for what is not given, and a
    migrated scratch database either way."""
    scratch = f"livectl_loadtest_{run_id}"
    server_url: str | None = None
    if database_url is not None:
        server_url = _asyncpg(database_url)
        _autocommit(server_url, f'CREATE DATABASE "{scratch}"')
        database_url = make_url(server_url).set(database=scratch).render_as_string(False)
    with tempfile.TemporaryDirectory(prefix=f"livectl-{name}-") as work_name:
        work_dir = Path(work_name)
        services = EmbeddedServices(
            work_dir, redis_url=redis_url, database_url=database_url, persistent=False
        )
        try:
            urls = services.start()
            upgrade(urls.database_url)
            yield work_dir, urls
        finally:
            services.stop()
            if server_url is not None:
                _autocommit(server_url, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def _asyncpg(url: str) -> str:
    return make_url(url).set(drivername="postgresql+asyncpg").render_as_string(False)


def _autocommit(url: str, statement: str) -> None:
    async def run() -> None:
        engine = create_async_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


def scalar_sql(url: str, statement: str, **params: object) -> object:
    async def run() -> object:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                return (await connection.execute(text(statement), params)).scalar()
        finally:
            await engine.dispose()

    return asyncio.run(run())


# ---------------------------------------------------------------------------------------------
# Processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (uvicorn's supervisor and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # exited meanwhile
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def rss_kib(pids: Sequence[int]) -> int:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system time the processes have used so far."""
    ticks = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / _CLOCK_TICKS


def machine_cpu_seconds() -> tuple[float, float]:
    """CPU time the whole machine has been busy, and the part of it stolen by the hypervisor."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS, steal / _CLOCK_TICKS


def postmaster_pid(data_dir: Path) -> int | None:
    """The embedded PostgreSQL's server process, from its pid file."""
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


class Child:
    """``python -m livectl ...`` (or another module) with the bench's environment, its output in
    a log file."""

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: dict[str, str],
        log_dir: Path,
        *,
        module: str = "livectl",
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args, "--log-level", "warning"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def pids(self) -> list[int]:
        return process_tree(self.process.pid)

    def check_running(self) -> None:
        code = self.process.poll()
        if code is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with code {code}; its log ends:\n{tail}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                for pid in reversed(self.pids()):
                    os.kill(pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def livectl_env(urls: ServiceUrls, secret: str, data_dir: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "LIVECTL_REDIS_URL": urls.redis_url,
        "LIVECTL_DATABASE_URL": urls.database_url,
        "LIVECTL_SECRET": secret,
        "LIVECTL_DATA_DIR": str(data_dir),
        "LIVECTL_HOST": "127.0.0.1",
        "LIVECTL_PORT": str(port),
        # The benches measure capacity: a few tokens and sockets carry all the load, past the
        # defaults (250,000 events/s per token, 100,000 per socket: a socket alone on a
        # gateway process passed it). tests/test_limits.py covers the limiters.
        "LIVECTL_INGEST_EVENTS_PER_S_PER_TOKEN": "0",
        "LIVECTL_INGEST_EVENTS_PER_S_PER_SOCKET": "0",
    }


@dataclass(frozen=True)
class Gateway:
    child: Child
    processes: int
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def pids(self) -> list[int]:
        return self.child.pids()


@contextmanager
def gateway(env: dict[str, str], processes: int, log_dir: Path) -> Iterator[Gateway]:
    """``livectl api --processes N`` on the environment's port, once it answers."""
    child = Child(f"gateway-{processes}p", ["api", "--processes", str(processes)], env, log_dir)
    with _serving(child, processes, env) as running:
        yield running


@contextmanager
def floor_server(env: dict[str, str], processes: int, log_dir: Path) -> Iterator[Gateway]:
    """``loadtest.floor_app`` served as ``livectl api`` serves the gateway (N processes, each on
    its own socket, websockets-sansio, uvloop and httptools where installed), on the
    environment's port."""
    args = ["--processes", str(processes)]
    args += ["--host", env["LIVECTL_HOST"], "--port", env["LIVECTL_PORT"]]
    child = Child(f"floor-{processes}p", args, env, log_dir, module="loadtest.floor_app")
    with _serving(child, processes, env) as running:
        yield running


@contextmanager
def _serving(child: Child, processes: int, env: dict[str, str]) -> Iterator[Gateway]:
    running = Gateway(child, processes, env["LIVECTL_HOST"], int(env["LIVECTL_PORT"]))
    try:
        _wait_ready(running)
        yield running
    finally:
        child.stop()


def _wait_ready(gateway: Gateway) -> None:
    wait_answering(gateway.base_url, gateway.child.check_running)
    # Worker processes start up side by side and only accept once ready, so the first answer
    # means one is up; give the others a moment (any straggler is covered by each warm-up).
    time.sleep(_STARTUP_GRACE_S)


def wait_answering(
    base_url: str, check_running: Callable[[], None], timeout_s: float = _READY_TIMEOUT_S
) -> None:
    """Until ``base_url`` answers /readyz; ``check_running`` raises once the server is gone."""
    deadline = time.monotonic() + timeout_s
    while not _answers(base_url):
        check_running()
        if time.monotonic() > deadline:
            raise TimeoutError(f"the gateway was not ready within {timeout_s:.0f} s")
        time.sleep(0.2)


def _answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# ---------------------------------------------------------------------------------------------
# Rooms


class Api:
    def __init__(self, base_url: str, secret: str) -> None:
        self.secret = secret
        admin = issue_token(secret, sub="loadtest", role=Role.ADMIN, rooms=[ALL_ROOMS], ttl_s=7200)
        self._http = httpx.Client(
            base_url=base_url, headers={"authorization": f"Bearer {admin}"}, timeout=30
        )

    def token(self, role: Role, room: str) -> str:
        return issue_token(self.secret, sub=f"loadtest-{role}", role=role, rooms=[room], ttl_s=7200)

    def live_room(self, room: str) -> None:
        """Create the room with a product and start it."""
        for method, path, body in (
            ("POST", "/v1/rooms", {"id": room, "title": f"loadtest {room}"}),
            (
                "PUT",
                f"/v1/rooms/{room}/products",
                [{"id": "sku-1", "name": "羊绒开衫", "price": 29900, "stock": 500}],
            ),
            ("POST", f"/v1/rooms/{room}/start", None),
        ):
            response = self._http.request(method, path, json=body)
            if response.status_code >= 300:
                raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")

    def close(self) -> None:
        self._http.close()


def redis_client(url: str) -> Redis:
    return Redis.from_url(url, socket_timeout=60)
