"""``livectl up``: one process tree with everything a single machine needs."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from types import FrameType

import httpx

from livectl.auth.tokens import ALL_ROOMS, Role, issue_token
from livectl.config import Settings
from livectl.embedded import EmbeddedServices, ServiceUrls
from livectl.store.migrate import upgrade
from livectl.workers import LATENCY_GROUPS

log = logging.getLogger("livectl.up")

_STOP_GRACE_S = 10.0
_READY_TIMEOUT_S = 60.0
# A child that dies this often within the window is broken, not unlucky: stop everything.
_MAX_RESTARTS = 5
_RESTART_WINDOW_S = 60.0


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen[bytes] | None = None
    deaths: deque[float] = field(default_factory=deque)

    def start(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(self.argv, env=env)  # noqa: S603 (our own interpreter)
        log.info("started %s (pid %d)", self.name, self.process.pid)

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()


class Stack:
    def __init__(
        self,
        settings: Settings,
        *,
        api_processes: int,
        worker_processes: int,
        demo_rate: float | None,
    ) -> None:
        self._settings = settings
        self._stop = threading.Event()
        python = [sys.executable, "-m", "livectl"]
        # Console relaying runs apart from the bulk work so that chat is never queued behind it.
        latency = LATENCY_GROUPS
        self._children = [
            Child("api", [*python, "api", "--processes", str(api_processes)]),
            *(
                Child(f"worker-{i}", [*python, "worker", *(f"--except-group={g}" for g in latency)])
                for i in range(1, worker_processes + 1)
            ),
            Child("relay", [*python, "worker", *(f"--group={g}" for g in latency)]),
        ]
        if demo_rate is not None:
            self._children.append(Child("demo", [*python, "demo", "--rate", str(demo_rate)]))

    def run(self) -> None:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        services = EmbeddedServices(
            self._settings.data_dir,
            redis_url=self._settings.redis_url,
            database_url=self._settings.database_url,
        )
        try:
            urls = services.start()
            upgrade(urls.database_url)
            env = self._child_env(urls)
            for child in self._children:
                child.start(env)
            if self._wait_ready():
                self._banner()
                self._supervise(env)
        finally:
            self._stop_children()
            services.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        self._stop.set()

    def _child_env(self, urls: ServiceUrls) -> dict[str, str]:
        settings = self._settings
        return {
            **os.environ,
            "LIVECTL_REDIS_URL": urls.redis_url,
            "LIVECTL_DATABASE_URL": urls.database_url,
            "LIVECTL_SECRET": settings.jwt_secret,
            "LIVECTL_DATA_DIR": str(settings.data_dir),
            "LIVECTL_HOST": settings.host,
            "LIVECTL_PORT": str(settings.port),
        }

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if httpx.get(f"{self._settings.base_url}/readyz", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            if self._children[0].exited() is not None:
                log.error("the gateway exited during start-up; see its log above")
                return False
            self._stop.wait(0.2)
        if not self._stop.is_set():
            log.error("the gateway did not become ready within %.0f s", _READY_TIMEOUT_S)
        return False

    def _banner(self) -> None:
        base = self._settings.base_url
        admin = issue_token(
            self._settings.jwt_secret,
            sub="livectl-up",
            role=Role.ADMIN,
            rooms=[ALL_ROOMS],
            ttl_s=12 * 3600,
        )
        demo = any(child.name == "demo" for child in self._children)
        sign_in = f"{base}/#token={admin}" + ("&to=/console/demo" if demo else "")
        lines = [
            "",
            "livectl is up",
            f"  Consoles       {sign_in}",
            f"  API and docs   {base}/docs",
            f"  Console stream {base.replace('http', 'ws', 1)}/v1/rooms/ROOM/console?token=TOKEN",
            f"  Admin token    {admin}",
        ]
        if demo:
            lines.append("  Demo room      watch it live with:  livectl tail demo")
        lines += [f"  Data           {self._settings.data_dir}", "Stop with Ctrl-C.", ""]
        print("\n".join(lines), flush=True)

    def _supervise(self, env: dict[str, str]) -> None:
        while not self._stop.wait(0.5):
            for child in self._children:
                code = child.exited()
                if code is None:
                    continue
                now = time.monotonic()
                child.deaths.append(now)
                while child.deaths and now - child.deaths[0] > _RESTART_WINDOW_S:
                    child.deaths.popleft()
                if len(child.deaths) >= _MAX_RESTARTS:
                    log.error("%s keeps exiting (last code %s); stopping", child.name, code)
                    return
                log.warning("%s exited with code %s; restarting", child.name, code)
                child.start(env)

    def _stop_children(self) -> None:
        running = [c for c in reversed(self._children) if c.process and c.process.poll() is None]
        for child in running:
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_S
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
                child.process.kill()
                child.process.wait()
