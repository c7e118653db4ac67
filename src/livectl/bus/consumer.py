"""The consumer loop every worker uses, one consumer group per concern.

For each room stream: XREADGROUP with COUNT, hand the batch to the handler, XACK after its
effect (at-least-once: handlers are idempotent). Entries a crashed consumer left pending are
taken over with XAUTOCLAIM once idle; an entry delivered more than ``max_deliveries`` times is
parked in the room's dead-letter stream so one poison entry cannot stall a room. A batch that
fails because a store is down (PostgreSQL stopped, a connection lost) is not poison: it is
held and retried in place until the store is back, and never counts towards that cap.

Consumers of one group share a room's entries, so two of them may apply consecutive entries
at once. An ordered group (the console relay: viewers see chat in the order it came) has one
consumer at a time follow a room instead, under a lease it renews as it reads; another takes
the room over, with its pending entries, when the lease lapses; a consumer that stops cleanly
gives its leases up after its last batch, so a rolling restart hands rooms on within a second
instead of leaving their chat unrelayed for a lease's life.

A group that is not latency-bound lingers: after a read that found no backlog it reads the
room again no sooner than ``linger_ms`` after the last read began. At a few thousand events
a second, reading as each entry lands made every group pay a read, a handler's round trips
and an ack per entry of a few dozen events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from redis.typing import EncodableT, FieldT

from livectl import metrics
from livectl.bus.keys import ROOMS, RawEntry, RoomKeys, StreamReply
from livectl.bus.lua import LEASE, RELEASE
from livectl.config import Settings
from livectl.kit import codec
from livectl.kit.clock import now_ms
from livectl.kit.outages import is_outage

log = logging.getLogger("livectl.bus")


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    fields: dict[bytes, bytes]


Handler = Callable[[str, Sequence[Entry]], Awaitable[None]]
StreamOf = Callable[[str], str]  # a room's stream that a group follows


def events_stream(room: str) -> str:
    return RoomKeys(room).events


def consumer_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _entries(raw: Sequence[tuple[bytes, dict[bytes, bytes] | None]]) -> list[Entry]:
    # XAUTOCLAIM reports entries trimmed away meanwhile with no fields: nothing to handle.
    return [Entry(entry_id.decode(), fields) for entry_id, fields in raw if fields]


_OUTAGE_RETRY_MAX_S = 5.0


class StreamConsumer:
    def __init__(
        self,
        redis: Redis,
        settings: Settings,
        *,
        group: str,
        handler: Handler,
        name: str,
        stream_of: StreamOf = events_stream,
        ordered: bool = False,
        linger_ms: int = 0,
    ) -> None:
        self._redis = redis
        self._lease = redis.register_script(LEASE) if ordered else None
        self._release = redis.register_script(RELEASE)
        # Long enough to outlast a blocking read and the batch it returns between renewals.
        self._lease_ms = max(5000, 5 * settings.worker_block_ms)
        self._stream_of = stream_of
        self._linger_s = linger_ms / 1000
        self._settings = settings
        self.group = group
        self._handler = handler
        self.name = name
        self._rooms: dict[str, asyncio.Task[None]] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Follow every room until ``stop`` is set, then finish the batch in hand and return."""
        try:
            while not stop.is_set():
                try:
                    rooms = {codec.text(r) for r in await self._redis.smembers(ROOMS)}
                except RedisError as exc:
                    log.warning("%s: cannot list rooms: %s", self.group, exc)
                    rooms = set()
                for room in rooms - self._rooms.keys():
                    self._rooms[room] = asyncio.create_task(
                        self._follow(room, stop), name=f"{self.group}:{room}"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._settings.room_scan_ms / 1000)
        finally:
            if self._rooms:
                await asyncio.gather(*self._rooms.values(), return_exceptions=True)

    async def _follow(self, room: str, stop: asyncio.Event) -> None:
        """Consume one room's stream until ``stop``, or until the room is over: ended past
        its grace time, with nothing left to deliver or pending in this group."""
        stream = self._stream_of(room)
        loop = asyncio.get_running_loop()
        next_reclaim = 0.0
        next_renewal = 0.0
        group_ready = False
        holding = False  # this room's follow lease (ordered groups)
        while not stop.is_set():
            try:
                if not group_ready:
                    await self._ensure_group(stream)
                    group_ready = True
                if self._lease is not None and loop.time() >= next_renewal:
                    holding = bool(
                        await self._lease(
                            keys=[RoomKeys(room).follow_lease(self.group)],
                            args=[self.name, self._lease_ms],
                        )
                    )
                    if not holding:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), self._lease_ms / 5000)
                        continue
                    # Renewed at a third of its life: two thirds are left for a read and a batch.
                    next_renewal = loop.time() + self._lease_ms / 3000
                if loop.time() >= next_reclaim:
                    await self._reclaim(room, stream, stop)
                    next_reclaim = loop.time() + self._settings.reclaim_every_ms / 1000
                    if await self._room_is_over(room, stream):
                        log.info(
                            "%s/%s: room ended and drained; no longer followed", self.group, room
                        )
                        break
                read_at = loop.time()
                reply: StreamReply | None = await self._redis.xreadgroup(  # type: ignore[assignment]
                    self.group,
                    self.name,
                    {stream: ">"},
                    count=self._settings.worker_batch,
                    block=self._settings.worker_block_ms,
                )
                read = 0
                for _, raw in reply or ():
                    read += len(raw)
                    await self._process(room, stream, _entries(raw), stop)
                # Handling the batch counts towards the linger: a group that takes longer than
                # the linger over each batch (a busy room) reads again at once.
                linger_left = read_at + self._linger_s - loop.time()
                if linger_left > 0 and read < self._settings.worker_batch:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), linger_left)
            except RedisError as exc:
                # NOGROUP: the stream was deleted (and its group with it) while we followed.
                group_ready = group_ready and "NOGROUP" not in str(exc)
                log.warning("%s/%s: redis error, retrying: %s", self.group, room, exc)
                await asyncio.sleep(0.5)
            except Exception:
                # A bug must not silently end a room's consumption: say so loudly, go on.
                log.exception("%s/%s: consumer loop failed; retrying", self.group, room)
                await asyncio.sleep(1.0)
        if holding:
            # Stopped cleanly, the batch in hand acked: the next consumer may follow at once.
            with contextlib.suppress(RedisError):
                await self._release(
                    keys=[RoomKeys(room).follow_lease(self.group)], args=[self.name]
                )

    async def _room_is_over(self, room: str, stream: str) -> bool:
        cached = await self._redis.hget(RoomKeys(room).meta, "json")
        ended_at = codec.loads(cached)["room"]["ended_at"] if cached else None
        if ended_at is None or now_ms() < ended_at + self._settings.ended_room_grace_ms:
            return False
        groups: list[dict[str, Any]] = await self._redis.xinfo_groups(stream)
        mine = next((g for g in groups if codec.text(g["name"]) == self.group), None)
        # Redis 7 reports lag (None when it cannot tell); 6.2 does not: compare ids instead.
        if mine is None or mine["pending"]:
            return False
        lag = mine.get("lag")
        if lag is not None:
            return int(lag) == 0
        last: list[RawEntry] = await self._redis.xrevrange(stream, count=1)  # type: ignore[assignment]
        return not last or codec.text(last[0][0]) == codec.text(mine["last-delivered-id"])

    async def _ensure_group(self, stream: str) -> None:
        try:
            await self._redis.xgroup_create(stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _process(
        self, room: str, stream: str, entries: list[Entry], stop: asyncio.Event
    ) -> None:
        if not entries:
            return
        try:
            await self._handle_through_outages(room, stream, entries, stop)
        except Exception:
            if stop.is_set():
                return  # left pending: whoever runs next reclaims them
            log.exception(
                "%s/%s: batch of %d failed; retrying one by one", self.group, room, len(entries)
            )
            for entry in entries:
                try:
                    await self._handler(room, [entry])
                except Exception:
                    # Left pending: reclaimed after reclaim_idle_ms, dead-lettered past the cap.
                    log.exception("%s/%s: entry %s failed", self.group, room, entry.id)
                else:
                    await self._redis.xack(stream, self.group, entry.id)
            return
        await self._redis.xack(stream, self.group, *(entry.id for entry in entries))
        metrics.WORKER_ENTRIES.labels(self.group).inc(len(entries))

    async def _handle_through_outages(
        self, room: str, stream: str, entries: list[Entry], stop: asyncio.Event
    ) -> None:
        """Handle the batch, waiting out a store that is down; re-raise any other failure."""
        delay = 0.25
        while True:
            try:
                with metrics.WORKER_BATCH_SECONDS.labels(self.group).time():
                    await self._handler(room, entries)
                return
            except Exception as exc:
                if not is_outage(exc) or stop.is_set():
                    raise
                log.warning(
                    "%s/%s: a store is unavailable (%s); holding %d entries, retry in %.2f s",
                    self.group,
                    room,
                    exc.__class__.__name__,
                    len(entries),
                    delay,
                )
            await self._hold(stream, entries)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, _OUTAGE_RETRY_MAX_S)

    async def _hold(self, stream: str, entries: list[Entry]) -> None:
        """Keep the entries ours while we wait: XCLAIM JUSTID resets their idle time without
        counting a delivery, so no other consumer reclaims them and none is dead-lettered."""
        with contextlib.suppress(RedisError):
            await self._redis.xclaim(
                stream,
                self.group,
                self.name,
                min_idle_time=0,
                message_ids=[entry.id for entry in entries],
                justid=True,
            )

    async def _reclaim(self, room: str, stream: str, stop: asyncio.Event) -> None:
        start = "0-0"
        while True:
            # Redis 7 adds a third element (ids deleted meanwhile); 6.2 answers two.
            reply = await self._redis.xautoclaim(
                stream,
                self.group,
                self.name,
                min_idle_time=self._settings.reclaim_idle_ms,
                start_id=start,
                count=self._settings.worker_batch,
            )
            start_next, raw = reply[0], reply[1]
            entries = _entries(raw)
            if entries:
                log.info("%s/%s: reclaimed %d stalled entries", self.group, room, len(entries))
                kept = await self._park_poison(room, stream, entries)
                await self._process(room, stream, kept, stop)
            start = start_next.decode() if isinstance(start_next, bytes) else start_next
            if start == "0-0":
                return

    async def _park_poison(self, room: str, stream: str, entries: list[Entry]) -> list[Entry]:
        pending: list[dict[str, Any]] = await self._redis.xpending_range(
            stream,
            self.group,
            min=entries[0].id,
            max=entries[-1].id,
            count=len(entries) * 2,
            consumername=self.name,
        )
        deliveries: dict[str, int] = {
            p["message_id"].decode(): p["times_delivered"] for p in pending
        }
        keep = []
        for entry in entries:
            if deliveries.get(entry.id, 0) <= self._settings.max_deliveries:
                keep.append(entry)
                continue
            log.error(
                "%s/%s: entry %s failed %d times; dead-lettered",
                self.group,
                room,
                entry.id,
                deliveries[entry.id],
            )
            parked: dict[FieldT, EncodableT] = {"group": self.group, "entry": entry.id}
            for name, value in entry.fields.items():
                parked[name] = value
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.xadd(
                    RoomKeys(room).dead_letters,
                    parked,
                    maxlen=10_000,
                    approximate=True,
                )
                pipe.xack(stream, self.group, entry.id)
                await pipe.execute()
        return keep
