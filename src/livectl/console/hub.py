"""Fan-out: one reader per room channel per process, one decoded frame for all its sockets.

Each socket has a bounded backlog. The reader appends a whole XREAD batch to every queue and
wakes each socket once per batch (not once per message), so the cost of a busy room grows
with batches, not with messages times sockets. A socket whose backlog reached its bound is
marked overflowed and dropped from the room; its own task closes it with 4008. Nothing the
reader does ever waits on a socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import NamedTuple

from redis.asyncio import Redis
from redis.exceptions import RedisError

from livectl import metrics
from livectl.bus.keys import Channel, RoomKeys, StreamReply
from livectl.bus.publish import seq_of
from livectl.kit import codec

log = logging.getLogger("livectl.console")


class Frame(NamedTuple):
    seq: int
    text: str  # the envelope, encoded once for every socket
    staff_only: bool


def frame_of(entry_id: bytes, fields: dict[bytes, bytes]) -> Frame:
    return Frame(seq_of(entry_id), fields[b"f"].decode(), b"s" in fields)


class Subscriber:
    """One socket's backlog. Kept small on purpose (a list and a future made only while the
    socket waits): an idle console costs memory for hours, times thousands of sockets."""

    __slots__ = ("_limit", "_waiter", "ended", "frames", "overflowed", "staff")

    def __init__(self, limit: int, *, staff: bool) -> None:
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None
        self.staff = staff
        self.frames: list[Frame] = []
        self.overflowed = False
        self.ended = False  # the client went away

    def offer(self, frames: Sequence[Frame]) -> bool:
        # The bound is on the backlog a socket has not sent yet, so a reader that keeps up
        # is never dropped however large one burst is; memory stays under limit + one batch.
        if len(self.frames) >= self._limit:
            self.overflowed = True
            self._wake()
            return False
        self.frames.extend(frames)
        self._wake()
        return True

    def end(self) -> None:
        self.ended = True
        self._wake()

    async def wait(self) -> None:
        """Until there are frames to send, the backlog overflowed or the client left."""
        if self.frames or self.overflowed or self.ended:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def take(self) -> list[Frame]:
        frames, self.frames = self.frames, []
        return frames

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class _ChannelReader:
    def __init__(self, redis: Redis, stream: str, start_seq: int) -> None:
        self.subscribers: set[Subscriber] = set()
        self._redis = redis
        self._stream = stream
        self._last_id = f"{start_seq}-0"
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        while self.subscribers:
            try:
                reply: StreamReply | None = await self._redis.xread(  # type: ignore[assignment]
                    {self._stream: self._last_id}, count=1000, block=1000
                )
            except RedisError as exc:
                log.warning("fan-out read of %s failed, retrying: %s", self._stream, exc)
                await asyncio.sleep(0.5)
                continue
            for _, entries in reply or ():
                frames = [frame_of(entry_id, fields) for entry_id, fields in entries]
                self._last_id = codec.text(entries[-1][0])
                self._dispatch(frames)

    def _dispatch(self, frames: list[Frame]) -> None:
        public = [frame for frame in frames if not frame.staff_only]
        overflowed = [
            sub for sub in self.subscribers if not sub.offer(frames if sub.staff else public)
        ]
        for sub in overflowed:
            self.subscribers.discard(sub)
            metrics.SOCKETS_OVERFLOWED.inc()
        metrics.FRAMES_FANNED_OUT.inc(len(frames) * len(self.subscribers))


class Hub:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._readers: dict[tuple[str, Channel], _ChannelReader] = {}

    async def subscribe(self, room: str, channel: Channel, subscriber: Subscriber) -> None:
        """From the moment this returns, the subscriber gets every message published after
        the channel's position when its reader started; callers replay history up to the
        present themselves and drop what they see twice (by seq)."""
        key = (room, channel)
        reader = self._readers.get(key)
        if reader is None:
            keys = RoomKeys(room)
            current = await self._redis.get(keys.channel_seq(channel))
            reader = self._readers.get(key)  # another socket may have started it meanwhile
            if reader is None:
                reader = _ChannelReader(self._redis, keys.channel(channel), int(current or 0))
                self._readers[key] = reader
        reader.subscribers.add(subscriber)
        if reader.task is None or reader.task.done():
            reader.task = asyncio.create_task(reader.run(), name=f"fanout:{room}:{channel}")
            reader.task.add_done_callback(lambda _: self._forget(key, reader))

    def unsubscribe(self, room: str, channel: Channel, subscriber: Subscriber) -> None:
        reader = self._readers.get((room, channel))
        if reader is not None:
            reader.subscribers.discard(subscriber)

    def _forget(self, key: tuple[str, Channel], reader: _ChannelReader) -> None:
        if self._readers.get(key) is reader and not reader.subscribers:
            del self._readers[key]

    async def close(self) -> None:
        tasks = [r.task for r in self._readers.values() if r.task is not None]
        for reader in self._readers.values():
            reader.subscribers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._readers.clear()
