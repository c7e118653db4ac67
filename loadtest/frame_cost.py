"""``python -m loadtest frame-cost``: user-space instructions per one-event frame in one gateway
process, counted by callgrind.

Events/s and CPU time follow the host's speed, which moved by 2x within minutes on the 2-core
VM; instructions do not (two runs of the same code agree within about 0.3%), so this is the
figure to compare code changes on the one-event path. It leaves out the kernel (each frame's
read and write, about a third of the gateway's CPU), and valgrind makes the gateway about 50x
slower, so it measures few sockets and frames. Needs valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson
from websockets.asyncio.client import connect

from livectl.auth.tokens import Role
from loadtest.bench import chat_event
from loadtest.stack import (
    Api,
    backing_services,
    free_port,
    livectl_env,
    log_progress,
    wait_answering,
)

_READY_TIMEOUT_S = 300.0  # under valgrind, start-up takes minutes
_WARM_FRAMES = 20  # per socket, before counting: imports, caches, the room's first look


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest frame-cost", description=__doc__)
    parser.add_argument("--redis-url", help="use this Redis (default: an embedded one)")
    parser.add_argument("--database-url", help="use this PostgreSQL (default: an embedded one)")
    parser.add_argument("--sockets", type=int, default=100)
    parser.add_argument("--frames", type=int, default=200, help="per socket, counted")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("frame-cost needs valgrind: apt-get install valgrind", file=sys.stderr)
        return 2
    log_progress()
    run_id = secrets.token_hex(3)
    with backing_services(
        "frame-cost", redis_url=args.redis_url, database_url=args.database_url, run_id=run_id
    ) as (work_dir, urls):
        secret = secrets.token_urlsafe(48)
        port = free_port()
        out = work_dir / "callgrind.out"
        with (work_dir / "valgrind.log").open("wb") as valgrind_log:
            gateway = subprocess.Popen(
                [
                    *("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"),
                    *(sys.executable, "-m", "livectl", "api", "--processes", "1"),
                    *("--log-level", "warning"),
                ],
                env=livectl_env(urls, secret, work_dir, port),
                stderr=valgrind_log,
            )
            try:
                base_url = f"http://127.0.0.1:{port}"
                wait_answering(base_url, lambda: _check_running(gateway), _READY_TIMEOUT_S)
                api = Api(base_url, secret)
                room = f"frame-cost-{run_id}"
                api.live_room(room)
                token = api.token(Role.INGEST, room)
                api.close()
                url = f"ws://127.0.0.1:{port}/v1/rooms/{room}/ingest?token={token}"
                asyncio.run(_send(url, args.sockets, _WARM_FRAMES))
                _callgrind_control("--zero", gateway.pid)
                asyncio.run(_send(url, args.sockets, args.frames))
                _callgrind_control("--dump", gateway.pid)
            finally:
                gateway.terminate()
                gateway.wait(60)
        counted = _instructions(out.with_name(out.name + ".1"))
    frames = args.sockets * args.frames
    print(f"{counted / frames:,.0f} instructions per one-event frame ({frames:,} frames)")
    return 0


def _check_running(gateway: subprocess.Popen[bytes]) -> None:
    if gateway.poll() is not None:
        raise RuntimeError(f"the gateway exited with {gateway.returncode}")


async def _send(url: str, sockets: int, frames: int) -> None:
    """Each socket sends its frames one at a time, each once the last one's ack is back. No
    permessage-deflate is offered: gateways older than `a616e06` accepted it, and their
    figures stay comparable."""
    payloads = [orjson.dumps(chat_event(i)) for i in range(50)]

    async def one(first: int) -> None:
        async with connect(url, compression=None) as websocket:
            for i in range(frames):
                await websocket.send(payloads[(first + i) % len(payloads)], text=True)
                answer = orjson.loads(await websocket.recv())
                if answer.get("accepted") != 1:
                    raise RuntimeError(f"unexpected answer: {answer}")

    await asyncio.gather(*(one(first) for first in range(sockets)))


def _callgrind_control(action: str, pid: int) -> None:
    subprocess.run(["callgrind_control", action, str(pid)], check=True, capture_output=True)


def _instructions(dump: Path) -> int:
    for _ in range(100):  # callgrind writes the dump a moment after callgrind_control returns
        if dump.exists() and (found := re.search(rb"^summary: (\d+)", dump.read_bytes(), re.M)):
            return int(found.group(1))
        time.sleep(0.1)
    raise RuntimeError(f"no callgrind dump at {dump}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
