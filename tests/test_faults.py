"""Faults under load: a worker or a gateway killed with kill -9, Redis restarted, PostgreSQL
stopped for 30 s, the network to Redis stalled, 1,000 consoles reconnecting at once.

Every scenario runs its own processes against its own Redis (so no other test's worker
touches its rooms), feeds chat through REST the way a bridge that must not lose events does
(a batch is retried with the same event ids, on another gateway if one is down, until it is
answered 202), and keeps consoles that reconnect with ``since``. Afterwards it checks what
the issue asks: nothing accepted is lost, nothing is archived or shown twice, no console has
a gap; and it reports how long ingest was refused and how long everything took to catch up.
Each scenario prints its figures as a JSON line (seen with ``-s``) and, with
``LIVECTL_FAULT_REPORT=path``, appends them there; docs/reliability.md keeps the latest.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from livectl.auth.tokens import Role
from livectl.embedded._postgres import PostgresServer
from livectl.kit import codec
from livectl.store.migrate import upgrade
from tests.conftest import (
    CrashableRedis,
    Stack,
    chat,
    create_room,
    free_port,
    running_stack,
    sql_value,
    wait_for,
    wait_ready,
)
from tests.flaky_proxy import FlakyProxy
from tests.test_coupons import DROP

# Consoles must be able to resume across the outage: the suite's short history would give them
# a reset instead, which is what a real deployment's defaults avoid.
RESUMABLE = {"LIVECTL_HISTORY_MIN": "10000", "LIVECTL_HISTORY_MS": "600000"}
BATCH = 20
BATCHES_PER_S = 25  # 500 chat events a second


@dataclass
class Producer:
    """A bridge posting chat batches; a batch is retried, same ids, until one gateway takes it."""

    gateways: list[str]
    room: str
    token: str
    acked: list[str] = field(default_factory=list)
    refused_s: float = 0.0  # the longest time between a refusal and the next success
    _sent: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(headers=headers, timeout=5) as client:
            turn = 0
            while not stop.is_set():
                started = time.monotonic()
                batch = [
                    chat(f"第{n}条", user=f"u{n % 50}", event_id=f"e{n}")
                    for n in range(self._sent, self._sent + BATCH)
                ]
                self._sent += BATCH
                first_refusal: float | None = None
                while True:
                    gateway = self.gateways[turn % len(self.gateways)]
                    with contextlib.suppress(httpx.HTTPError):
                        reply = await client.post(
                            f"{gateway}/v1/rooms/{self.room}/events", json=batch
                        )
                        if reply.status_code == 202:
                            break
                    turn += 1  # this gateway is down or refusing: the next one
                    first_refusal = first_refusal or time.monotonic()
                    await asyncio.sleep(0.05)
                if first_refusal is not None:
                    self.refused_s = max(self.refused_s, time.monotonic() - first_refusal)
                self.acked += [event["id"] for event in batch]
                await asyncio.sleep(max(0.0, 1 / BATCHES_PER_S - (time.monotonic() - started)))


@dataclass
class Watcher:
    """A console that rides out outages by reconnecting with ``since``."""

    url: str
    ids: list[str] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    resets: int = 0
    reconnects: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            since = f"&since={self.seqs[-1]}" if self.seqs else ""
            try:
                async with connect(self.url + since, max_size=None, open_timeout=5) as socket:
                    while not stop.is_set():
                        with contextlib.suppress(TimeoutError):
                            frame = await asyncio.wait_for(socket.recv(), 0.5)
                            self._take(str(frame))
            except (OSError, WebSocketException, TimeoutError):
                self.reconnects += 1
                await asyncio.sleep(0.2)

    def _take(self, frame: str) -> None:
        for line in frame.splitlines():
            envelope: dict[str, Any] = codec.loads(line)
            if envelope["type"] == "reset":
                self.resets += 1
            if "seq" in envelope:
                self.seqs.append(envelope["seq"])
            if envelope["type"] == "chat":
                self.ids.append(envelope["data"]["event_id"])


@dataclass
class Run:
    stack: Stack
    room: str
    producer: Producer
    watcher: Watcher
    stop: asyncio.Event
    tasks: list[asyncio.Task[None]]


@asynccontextmanager
async def under_load(stack: Stack, gateways: list[str]) -> AsyncIterator[Run]:
    async with httpx.AsyncClient(
        base_url=gateways[0], headers=stack.headers(Role.ADMIN), timeout=10
    ) as admin:
        room = await create_room(admin)
    producer = Producer(gateways, room, stack.token(Role.INGEST, [room]))
    console = gateways[-1].replace("http", "ws", 1)
    watcher = Watcher(
        f"{console}/v1/rooms/{room}/console?token={stack.token(Role.HOST, [room])}&batch=1"
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(producer.run(stop)), asyncio.create_task(watcher.run(stop))]
    run = Run(stack, room, producer, watcher, stop, tasks)
    try:
        yield run
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def settle_and_check(run: Run, scenario: str, repaired_at: float) -> dict[str, Any]:
    """Stop the load, wait for the archive and the console, and check nothing was lost."""
    run.stop.set()
    await asyncio.gather(*run.tasks)
    acked = run.producer.acked
    watcher = Watcher(run.watcher.url, seqs=list(run.watcher.seqs), ids=list(run.watcher.ids))
    catch_up = asyncio.Event()
    follow = asyncio.create_task(watcher.run(catch_up))

    async def archived() -> int:
        return int(
            await sql_value(
                run.stack.database_url,
                "SELECT count(*) FROM events WHERE room_id = :room",
                room=run.room,
            )
        )

    async def caught_up() -> bool:
        return len(watcher.ids) >= len(acked) and await archived() >= len(acked)

    try:
        await wait_for(caught_up, timeout=90, interval=0.2)
    finally:
        catch_up.set()
        await follow
    settled_s = time.monotonic() - repaired_at
    distinct_archived = await sql_value(
        run.stack.database_url,
        "SELECT count(DISTINCT event_id) FROM events WHERE room_id = :room",
        room=run.room,
    )
    figures = {
        "scenario": scenario,
        "accepted": len(acked),
        "lost_from_archive": len(set(acked)) - int(distinct_archived),
        "archived_twice": await archived() - int(distinct_archived),
        "lost_on_console": len(set(acked) - set(watcher.ids)),
        "shown_twice": len(watcher.ids) - len(set(watcher.ids)),
        "console_gaps": watcher.resets
        + sum(b - a != 1 for a, b in zip(watcher.seqs, watcher.seqs[1:], strict=False)),
        "console_reconnects": run.watcher.reconnects + watcher.reconnects,
        "ingest_refused_s": round(run.producer.refused_s, 2),
        "caught_up_after_repair_s": round(settled_s, 2),
    }
    report(figures)
    assert figures["lost_from_archive"] == 0, figures
    assert figures["archived_twice"] == 0, figures
    assert figures["lost_on_console"] == 0, figures
    assert figures["shown_twice"] == 0, figures
    assert figures["console_gaps"] == 0, figures
    return figures


def report(figures: dict[str, Any]) -> None:
    print(codec.dumps_str(figures))
    if path := os.environ.get("LIVECTL_FAULT_REPORT"):
        with Path(path).open("a", encoding="utf-8") as out:
            out.write(codec.dumps_str(figures) + "\n")


@contextmanager
def private_stack(
    stack: Stack, redis_url: str, database_url: str | None = None, gateways: int = 1
) -> Iterator[tuple[Stack, list[str]]]:
    """A gateway (or several) and a worker of their own, on the Redis (and database) given."""
    ports = [free_port() for _ in range(gateways)]
    env = stack.env | RESUMABLE | {"LIVECTL_REDIS_URL": redis_url, "LIVECTL_PORT": str(ports[0])}
    if database_url:
        env["LIVECTL_DATABASE_URL"] = database_url
    own = Stack(
        f"http://127.0.0.1:{ports[0]}",
        stack.secret,
        redis_url,
        database_url or stack.database_url,
        env,
    )
    with running_stack(own) as running:
        urls = [running.base_url]
        for n, port in enumerate(ports[1:], start=2):
            running.spawn(f"api-{n}", "api", env=env | {"LIVECTL_PORT": str(port)})
            urls.append(f"http://127.0.0.1:{port}")
            wait_ready(urls[-1], list(running.processes.values()))
        yield running, urls


def kill(stack: Stack, name: str) -> None:
    process = stack.processes[name]
    process.kill()  # SIGKILL: no shutdown, no drain, no final ack
    process.wait()


async def test_worker_killed_under_load(stack: Stack, crashable: CrashableRedis) -> None:
    with private_stack(stack, crashable.url) as (own, gateways):
        async with under_load(own, gateways) as run:
            await asyncio.sleep(2)
            kill(own, "worker")
            await asyncio.sleep(1)
            own.spawn("worker", "worker")
            repaired_at = time.monotonic()
            await asyncio.sleep(2)
            await settle_and_check(run, "kill -9 the worker", repaired_at)


async def test_gateway_killed_under_load(stack: Stack, crashable: CrashableRedis) -> None:
    with private_stack(stack, crashable.url, gateways=2) as (own, gateways):
        async with under_load(own, gateways) as run:
            await asyncio.sleep(2)
            kill(own, "api")  # the first gateway: the bridge fails over to the second
            repaired_at = time.monotonic()
            await asyncio.sleep(2)
            figures = await settle_and_check(run, "kill -9 a gateway (of 2)", repaired_at)
    assert figures["accepted"] > 0


async def test_redis_restarted_under_load(stack: Stack, crashable: CrashableRedis) -> None:
    with private_stack(stack, crashable.url) as (own, gateways):
        async with under_load(own, gateways) as run:
            await asyncio.sleep(2)
            assert crashable.process is not None
            crashable.process.terminate()  # a restart: Redis writes its AOF out and exits
            crashable.process.wait(30)
            await asyncio.sleep(1)
            crashable.start()
            repaired_at = time.monotonic()
            await asyncio.sleep(2)
            figures = await settle_and_check(run, "restart Redis (AOF on)", repaired_at)
    assert figures["ingest_refused_s"] > 0, "the restart did not reach the gateway"


async def test_network_to_redis_stalled(stack: Stack, crashable: CrashableRedis) -> None:
    with (
        FlakyProxy(crashable.port) as proxy,
        private_stack(stack, f"redis://127.0.0.1:{proxy.port}/0") as (own, gateways),
    ):
        async with under_load(own, gateways) as run:
            await asyncio.sleep(2)
            proxy.flowing.clear()  # packets stop; no connection is closed
            await asyncio.sleep(8)
            proxy.flowing.set()
            repaired_at = time.monotonic()
            await asyncio.sleep(2)
            figures = await settle_and_check(run, "stall the network to Redis 8 s", repaired_at)
    assert figures["ingest_refused_s"] > 0, "the stall did not reach the gateway"


async def test_postgres_stopped_30_s(
    stack: Stack, crashable: CrashableRedis, tmp_path: Path
) -> None:
    postgres = PostgresServer(tmp_path / "postgres", persistent=True)
    url = postgres.start()
    try:
        await asyncio.to_thread(upgrade, url)
        with private_stack(stack, crashable.url, database_url=url) as (own, gateways):
            async with httpx.AsyncClient(
                base_url=gateways[0], headers=own.headers(Role.ADMIN), timeout=10
            ) as admin:
                coupon_room = await create_room(admin)
                drop = await admin.post(
                    f"/v1/rooms/{coupon_room}/coupons",
                    json=DROP | {"min_spend": 0, "quantity": 50, "duration_s": 600},
                )
                coupon = drop.json()["id"]
                async with under_load(own, gateways) as run:
                    await asyncio.sleep(2)
                    await asyncio.to_thread(postgres.stop)
                    outage_ends = time.monotonic() + 30
                    granted = await claim_while(admin, coupon_room, coupon, outage_ends)
                    await asyncio.to_thread(postgres.start)
                    repaired_at = time.monotonic()
                    await asyncio.sleep(2)
                    figures = await settle_and_check(run, "stop PostgreSQL 30 s", repaired_at)

                async def ledger_caught_up() -> bool:
                    rows = await sql_value(
                        url, "SELECT count(*) FROM coupon_claims WHERE drop_id = :d", d=coupon
                    )
                    return int(rows) >= granted

                await wait_for(ledger_caught_up, timeout=60)
                ledger = int(
                    await sql_value(
                        url, "SELECT count(*) FROM coupon_claims WHERE drop_id = :d", d=coupon
                    )
                )
                await admin.post(f"/v1/rooms/{coupon_room}/end")
        report({"scenario": "stop PostgreSQL 30 s: claims", "granted": granted, "ledger": ledger})
        assert granted == 50, "claims kept working with PostgreSQL down"
        assert ledger == granted
        assert figures["ingest_refused_s"] == 0, "ingest needs no PostgreSQL"
    finally:
        await asyncio.to_thread(postgres.stop)


async def claim_while(admin: httpx.AsyncClient, room: str, coupon: str, until: float) -> int:
    """Claim one coupon each for new viewers until ``until``; the count granted."""
    granted = 0
    viewer = 0
    while time.monotonic() < until:
        viewer += 1
        reply = await admin.post(
            f"/v1/rooms/{room}/coupons/{coupon}/claims", json={"user_id": f"viewer-{viewer}"}
        )
        assert reply.status_code in (201, 409), reply.text
        granted += reply.status_code == 201
        await asyncio.sleep(0.2)
    return granted


async def test_1000_consoles_reconnect_at_once(stack: Stack, crashable: CrashableRedis) -> None:
    consoles = 1000
    with private_stack(stack, crashable.url) as (own, gateways):
        # The room's REST calls queue behind 1,000 handshakes and snapshots on one gateway.
        async with httpx.AsyncClient(
            base_url=gateways[0], headers=own.headers(Role.ADMIN), timeout=60
        ) as admin:
            room = await create_room(admin)
            url = (
                f"{own.ws_url}/v1/rooms/{room}/console?token={own.token(Role.HOST, [room])}&batch=1"
            )
            events = f"/v1/rooms/{room}/events"
            opened = await asyncio.gather(*(connect_console(url) for _ in range(consoles)))
            sockets = [socket for socket, _ in opened]
            first = [chat(f"重连前{n}", event_id=f"before-{n}") for n in range(50)]
            assert (await admin.post(events, json=first)).status_code == 202
            last_seen = await asyncio.gather(*(seq_after(s, "before-49") for s in sockets))
            # All disconnected now; the room goes on without them.
            missed = [chat(f"断线中{n}", event_id=f"during-{n}") for n in range(200)]
            assert (await admin.post(events, json=missed)).status_code == 202
            started = time.monotonic()
            resumed = await asyncio.gather(
                *(resume(f"{url}&since={seq}", "during-199") for seq in last_seen)
            )
            all_caught_up_s = time.monotonic() - started
            await admin.post(f"/v1/rooms/{room}/end")
    expected = [f"during-{n}" for n in range(200)]
    complete = sum(ids == expected for ids, _, _ in resumed)
    figures = {
        "scenario": f"{consoles} consoles reconnect at once with since",
        "consoles": consoles,
        "complete_and_in_order": complete,
        "resets": sum(resets for _, resets, _ in resumed),
        "connects_refused_503": sum(refused for _, refused in opened),
        "reconnects_refused_503": sum(refused for _, _, refused in resumed),
        "all_caught_up_s": round(all_caught_up_s, 2),
    }
    report(figures)
    assert complete == consoles, figures


async def seq_after(socket: ClientConnection, last_id: str) -> int:
    """Read until ``last_id`` arrives, then disconnect: the seq to resume from."""
    seq = 0
    async with socket:
        while True:
            for line in str(await asyncio.wait_for(socket.recv(), 60)).splitlines():
                envelope = codec.loads(line)
                seq = envelope.get("seq", seq)
                if envelope["type"] == "chat" and envelope["data"]["event_id"] == last_id:
                    return int(seq)


async def connect_console(url: str) -> tuple[ClientConnection, int]:
    """Connect as a console does: again after a 503 (the gateway could not reach Redis in
    time, as in a storm of connections on a busy machine). The socket and the 503s met."""
    refused = 0
    while True:
        try:
            return await connect(url, max_size=None, open_timeout=60), refused
        except InvalidStatus as exc:
            if exc.response.status_code != 503:
                raise
            refused += 1
            await asyncio.sleep(0.5)


async def resume(url: str, last_id: str) -> tuple[list[str], int, int]:
    """Reconnect with since; the chat ids received up to ``last_id``, resets seen, 503s met."""
    socket, refused = await connect_console(url)
    ids: list[str] = []
    resets = 0
    async with socket:
        while not ids or ids[-1] != last_id:
            for line in str(await asyncio.wait_for(socket.recv(), 60)).splitlines():
                envelope = codec.loads(line)
                resets += envelope["type"] == "reset"
                if envelope["type"] == "chat":
                    ids.append(envelope["data"]["event_id"])
    return ids, resets, refused
