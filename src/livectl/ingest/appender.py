"""Appending accepted events to a room's stream: deduped, batched, one entry per flush.

redis-py cannot issue much more than ~45k commands/s per process however it pipelines, so
frames that arrive while the last flush is out are merged into the next, and each room gets
one Lua call per flush: it drops ids already seen in the dedupe window and appends the rest as
a single stream entry (a JSON array that workers unpack). A frame that finds no flush out goes
at once. Deduping and appending in one script also means an id is never marked seen without
its event being stored.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from livectl import metrics
from livectl.bus.keys import RoomKeys
from livectl.bus.scripts import ScriptCall, run_many
from livectl.config import Settings
from livectl.errors import ServiceUnavailable
from livectl.ingest.validation import ParsedBatch
from livectl.kit import codec
from livectl.kit.clock import now_ms

# KEYS: events stream, ids seen in this window, ids seen in the previous window
# ARGV: maxlen, ttl seconds, payload (JSON array), the events' ids joined by ',' ('' for an
# event without one; ids never hold a ','). One argument, not one per event: redis-py encodes
# each argument in Python, which cost more than the rest of the flush for one-event frames.
# Returns {entry id or '', comma-separated duplicate indexes}; duplicates stay in the payload
# and are listed in the entry's "x" field for workers to skip.
_APPEND = """
local previous_exists = redis.call('EXISTS', KEYS[3]) == 1
local duplicates = {}
local with_id = 0
local events = 0
for id in string.gmatch(ARGV[4] .. ',', '([^,]*),') do
  if id ~= '' then
    with_id = with_id + 1
    if (previous_exists and redis.call('SISMEMBER', KEYS[3], id) == 1)
        or redis.call('SADD', KEYS[2], id) == 0 then
      duplicates[#duplicates + 1] = events
    end
  end
  events = events + 1
end
if with_id > 0 then redis.call('EXPIRE', KEYS[2], ARGV[2]) end
local skipped = table.concat(duplicates, ',')
if #duplicates == events then
  return {'', skipped}
end
local entry
if #duplicates > 0 then
  entry = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[3], 'x', skipped)
else
  entry = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[3])
end
return {entry, skipped}
"""

# A flush goes out early once this much is waiting, to keep stream entries reasonably small.
_FLUSH_BYTES = 512 * 1024

T = TypeVar("T")
# What a batch's future holds, made from the batch and how many of its events were duplicates.
# One function for all batches, not a closure each: this runs once per frame.
Answer = Callable[[ParsedBatch, int], T]


def store_unavailable() -> ServiceUnavailable:
    return ServiceUnavailable("the event store is unavailable; retry shortly")


@dataclass(slots=True)
class _RoomBatch:
    events: int = 0  # in the batches below
    # (first event index, batch, waiter, its answer) for each batch
    waiters: list[tuple[int, ParsedBatch, asyncio.Future[Any], Answer[Any]]] = field(
        default_factory=list
    )

    def add(self, batch: ParsedBatch, waiter: asyncio.Future[T], answer: Answer[T]) -> None:
        self.waiters.append((self.events, batch, waiter, answer))
        self.events += len(batch.events)

    def script_args(self) -> tuple[bytes, str]:
        """Every event as one JSON array, and every event's id ('' for none) joined by ',':
        made once a flush, not once a frame."""
        events = [event for _, batch, _, _ in self.waiters for event in batch.events]
        return codec.dumps(events), ",".join(event.get("id") or "" for event in events)

    def settle(self, duplicates: list[int]) -> None:
        for start, batch, waiter, answer in self.waiters:
            if not waiter.done():
                lo = bisect.bisect_left(duplicates, start)
                hi = bisect.bisect_left(duplicates, start + len(batch.events))
                try:
                    waiter.set_result(answer(batch, hi - lo))
                except Exception as exc:  # a bug in the answer fails its own batch only
                    waiter.set_exception(exc)

    def fail(self, exc: BaseException) -> None:
        if isinstance(exc, RedisError):
            exc = store_unavailable()
        for _, _, waiter, _ in self.waiters:
            if not waiter.done():
                waiter.set_exception(exc)


class Appender:
    """Made within the event loop it serves."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        # Held, not looked up per batch: asyncio.get_running_loop() makes a getpid() system call,
        # which was a third of the gateway's system calls under one-event frames.
        self._loop = asyncio.get_running_loop()
        self._redis = redis
        self._settings = settings
        self._script = redis.register_script(_APPEND)
        self._pending: dict[str, _RoomBatch] = {}
        self._pending_bytes = 0
        # Flushes cut at _FLUSH_BYTES that wait their turn, oldest first.
        self._sealed: deque[dict[str, _RoomBatch]] = deque()
        # The task sending flushes, one after another, while there are any.
        self._sender: asyncio.Task[None] | None = None

    def submit(self, room: str, batch: ParsedBatch, answer: Answer[T]) -> asyncio.Future[T]:
        """Queue the batch for the next flush; the future is ``answer(batch, duplicates)`` once
        it is stored (one future per batch: this runs once per frame), ServiceUnavailable when
        Redis fails. Batches are stored in the order they are submitted."""
        waiter: asyncio.Future[T] = self._loop.create_future()
        if not batch.events:
            waiter.set_result(answer(batch, 0))
            return waiter
        pending = self._pending.get(room)
        if pending is None:  # (not setdefault: that would build a _RoomBatch every frame)
            pending = self._pending[room] = _RoomBatch()
        pending.add(batch, waiter, answer)
        self._pending_bytes += batch.size
        if self._pending_bytes >= _FLUSH_BYTES:
            self._seal()
        if self._sender is None:
            # Its first step runs after the callbacks already due: the frames read from sockets
            # in this same pass of the event loop go out in this flush.
            self._sender = asyncio.create_task(self._send())
        return waiter

    def _seal(self) -> None:
        if self._pending:
            self._sealed.append(self._pending)
            self._pending, self._pending_bytes = {}, 0

    async def _send(self) -> None:
        # One flush at a time, in order: a socket's frames are stored in the order they came
        # even though it no longer waits for one frame's ack before sending the next.
        try:
            while True:
                self._seal()
                if not self._sealed:
                    return
                await self._flush(self._sealed.popleft())
        finally:
            # No await between the last empty look and this: a later frame starts a new sender.
            self._sender = None

    async def _flush(self, pending: dict[str, _RoomBatch]) -> None:
        window = self._settings.dedupe_window_ms
        bucket = now_ms() // window
        calls: list[ScriptCall] = []
        for room, batch in pending.items():
            keys = RoomKeys(room)
            calls.append(
                (
                    [keys.events, keys.seen_ids(bucket), keys.seen_ids(bucket - 1)],
                    [
                        self._settings.events_stream_maxlen,
                        2 * window // 1000 + 3600,
                        *batch.script_args(),
                    ],
                )
            )
        try:
            results = await run_many(self._redis, self._script, calls)
        except Exception as exc:  # every waiter must hear of a failed flush
            for batch in pending.values():
                batch.fail(exc)
            return
        stored = duplicated = 0
        for batch, result in zip(pending.values(), results, strict=True):
            if isinstance(result, Exception):
                batch.fail(result)
            else:
                duplicates = parse_indexes(result[1])
                batch.settle(duplicates)
                stored += batch.events - len(duplicates)
                duplicated += len(duplicates)
        # Counted per flush, not per frame: each inc takes a lock.
        metrics.EVENTS_ACCEPTED.inc(stored)
        metrics.EVENTS_DUPLICATE.inc(duplicated)

    async def close(self) -> None:
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)


def parse_indexes(csv: bytes | str) -> list[int]:
    text = csv.decode() if isinstance(csv, bytes) else csv
    return [int(index) for index in text.split(",")] if text else []
