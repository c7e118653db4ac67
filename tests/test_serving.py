"""``livectl api --processes N``: every process takes a share of new connections, and the
gateway stops whole, with an error status, when one of its processes dies."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import uvicorn
from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope
from websockets.asyncio.client import connect

from livectl.serving import GatewayWebSocketProtocol
from tests.conftest import Stack, free_port, stop_processes, wait_for, wait_ready

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux /proc")


@contextmanager
def gateway(stack: Stack, processes: int) -> Iterator[tuple[Stack, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {**stack.env, "LIVECTL_PORT": str(port)}
    running = Stack(
        f"http://127.0.0.1:{port}", stack.secret, stack.redis_url, stack.database_url, env
    )
    process = running.spawn("api", "api", "--processes", str(processes))
    try:
        wait_ready(running.base_url, [process])
        yield running, process
    finally:
        stop_processes([process])


def gateway_processes(pid: int) -> list[int]:
    """The processes ``pid`` started to serve (not multiprocessing's resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            parent = int(stat[stat.rindex(")") + 2 :].split()[1])
            if parent == pid and b"spawn_main" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def tcp_sockets(pids: list[int], port: int) -> list[tuple[str, int, set[int]]]:
    """The TCP sockets on the gateway's ``port`` that the processes hold: their state (01
    established, 0A listening), remote port and holders, matched through inodes in /proc."""
    holders: dict[str, set[int]] = defaultdict(set)
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                holders[target[8:-1]].add(pid)
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == port and fields[9] in holders:
            found.append((fields[3], int(fields[2].split(":")[1], 16), holders[fields[9]]))
    return found


def wait_listening(pids: list[int], port: int) -> None:
    """Until every process listens: /readyz answers as soon as the first one does."""
    deadline = time.monotonic() + 30
    while True:
        listening = [held for state, _, held in tcp_sockets(pids, port) if state == "0A"]
        if set().union(*listening) == set(pids):
            return
        assert time.monotonic() < deadline, "not every gateway process listens"
        time.sleep(0.1)


def test_connections_opened_together_are_spread_over_the_processes(stack: Stack) -> None:
    with gateway(stack, 2) as (running, process), ExitStack() as sockets:
        port = int(running.base_url.rsplit(":", 1)[1])
        pids = gateway_processes(process.pid)
        assert len(pids) == 2
        wait_listening(pids, port)
        # A burst, as a bridge or a wave of reconnecting consoles makes: with one shared
        # listening socket, the process that woke first accepted all of them.
        clients = [
            sockets.enter_context(socket.create_connection(("127.0.0.1", port))) for _ in range(64)
        ]
        for client in clients:  # a request each, so every connection has been accepted
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        for client in clients:
            assert client.recv(4096).startswith(b"HTTP/1.1 200")
        mine = {client.getsockname()[1] for client in clients}
        shares = Counter(
            pid
            for state, remote_port, held in tcp_sockets(pids, port)
            if state == "01" and remote_port in mine
            for pid in held
        )
        assert sum(shares.values()) == 64
        # Spread by the kernel's hash of the addresses: far from even only by bad luck
        # (fewer than 16 of 64 on one side: probability below 1 in 10,000).
        assert min(shares[pid] for pid in pids) >= 16, shares


def test_a_dead_process_stops_the_gateway_with_an_error(stack: Stack) -> None:
    with gateway(stack, 2) as (_, process):
        first, second = gateway_processes(process.pid)
        os.kill(first, signal.SIGKILL)
        assert process.wait(30) == 1
        with pytest.raises(ProcessLookupError):
            os.kill(second, 0)


async def test_an_accepted_socket_keeps_no_handshake_messages() -> None:
    """Every idle console paid about 2 KiB for them (loadtest's idle-console memory)."""

    async def accept_then_wait(
        scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        await receive()

    port = free_port()
    config = uvicorn.Config(
        accept_then_wait,
        port=port,
        ws=GatewayWebSocketProtocol,
        lifespan="off",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:

        async def started() -> bool:
            return server.started

        await wait_for(started, interval=0.01)
        async with connect(f"ws://127.0.0.1:{port}/"):
            (protocol,) = server.server_state.connections
            assert isinstance(protocol, GatewayWebSocketProtocol)
            assert protocol.handshake_complete
            assert not hasattr(protocol, "request")
            assert not hasattr(protocol, "response")
    finally:
        server.should_exit = True
        await serving
