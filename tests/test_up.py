"""`livectl up --demo`, the newcomer's first command: comes up on embedded servers, shows a
living demo room, and stops everything cleanly on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from livectl.auth.tokens import Role, issue_token
from livectl.kit import codec
from tests.conftest import free_port, wait_ready


def _processes_using(data_dir: Path) -> list[str]:
    """Command lines of live processes that mention the data directory (the embedded servers)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(data_dir) in cmdline and "pytest" not in cmdline:
            found.append(cmdline)
    return found


async def _watch_demo(url: str) -> dict[str, int]:
    """Message types seen on the demo room's console until five chats came in."""
    seen: dict[str, int] = {}
    for _ in range(100):  # the demo room is created a moment after the gateway is ready
        try:
            async with connect(url) as console:
                while seen.get("chat", 0) < 5:
                    for line in str(await console.recv()).splitlines():
                        kind = codec.loads(line)["type"]
                        seen[kind] = seen.get(kind, 0) + 1
                return seen
        except InvalidStatus:  # 404 until the demo room exists
            await asyncio.sleep(0.2)
    return seen


@pytest.mark.slow
def test_up_demo_shows_a_living_room_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("LIVECTL_REDIS_URL", "LIVECTL_DATABASE_URL", "LIVECTL_SECRET")
    }
    command = [
        "up",
        "--demo",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--demo-rate",
        "50",
    ]
    up = subprocess.Popen(
        [sys.executable, "-m", "livectl", *command, "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", [up], timeout=90)
        secret = (data_dir / "secret").read_text().strip()
        token = issue_token(secret, sub="test", role=Role.HOST, rooms=["demo"], ttl_s=600)
        seen = asyncio.run(
            _watch_demo(f"ws://127.0.0.1:{port}/v1/rooms/demo/console?batch=1&token={token}")
        )
        assert seen.get("snapshot") == 1
        assert seen.get("chat", 0) >= 5
    finally:
        up.send_signal(signal.SIGINT)
        banner, _ = up.communicate(timeout=60)
    assert up.returncode == 0
    assert b"livectl is up" in banner
    assert b"livectl tail demo" in banner
    assert f"Consoles       http://127.0.0.1:{port}/#token=".encode() in banner
    assert b"&to=/console/demo" in banner
    assert _processes_using(data_dir) == []
