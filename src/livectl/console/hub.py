"""Fan-out: one reader per room channel per process, one encoded frame for all its sockets.

A socket that has caught up is written to by the reader itself: each XREAD batch is encoded
once as WebSocket frame bytes (per kind of view) and handed to every socket's transport, with
no task woken per socket. Until then (history being sent, or a server whose transport is not
reachable) the batch is appended to the socket's backlog and its own task sends it.

Either way each socket has a bound on the frames it has not taken yet: queued in its backlog,
or still in its transport's buffer (the kernel refused them). A socket past it is marked
overflowed and dropped from the room; its own task closes it with 4008. Nothing the reader
does ever waits on a socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError
from websockets.frames import Frame as WireFrame
from websockets.frames import Opcode

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


class Transport(Protocol):
    """What the reader needs of a socket's transport (asyncio's has it)."""

    def write(self, data: bytes) -> None: ...
    def get_write_buffer_size(self) -> int: ...
    def is_closing(self) -> bool: ...
    def get_extra_info(self, name: str) -> Any: ...


def encode(frames: Sequence[Frame], *, batch: bool) -> bytes:
    """The WebSocket bytes that carry ``frames``: one text frame of them all, joined by
    newlines, or one text frame each."""
    if batch:
        texts = "\n".join(frame.text for frame in frames).encode()
        return WireFrame(Opcode.TEXT, texts).serialize(mask=False)
    return b"".join(
        WireFrame(Opcode.TEXT, frame.text.encode()).serialize(mask=False) for frame in frames
    )


class _Batch:
    """One XREAD batch for every subscriber: each view of it encoded once, when first wanted."""

    __slots__ = ("_encoded", "frames", "public")

    def __init__(self, frames: list[Frame]) -> None:
        self.frames = frames
        self.public = [frame for frame in frames if not frame.staff_only]
        self._encoded: dict[tuple[bool, bool], bytes] = {}

    def view(self, *, staff: bool) -> list[Frame]:
        return self.frames if staff else self.public

    def encoded(self, *, staff: bool, batch: bool) -> bytes:
        key = (staff, batch)
        data = self._encoded.get(key)
        if data is None:
            data = self._encoded[key] = encode(self.view(staff=staff), batch=batch)
        return data


class _Unsent:
    """The writes a transport still holds (partly) unsent, oldest first, and their frames."""

    __slots__ = ("frames", "writes", "written")

    def __init__(self) -> None:
        self.writes: deque[tuple[int, int]] = deque()  # (bytes written up to its end, frames)
        self.written = 0
        self.frames = 0

    def add(self, size: int, frames: int, left: int) -> int:
        """Record a write; ``left`` is what the transport still holds. Returns the frames
        not yet wholly handed to the kernel."""
        self.written += size
        self.writes.append((self.written, frames))
        self.frames += frames
        sent = self.written - left
        while self.writes[0][0] <= sent:
            self.frames -= self.writes.popleft()[1]
        return self.frames


class Subscriber:
    """One socket's backlog. Kept small on purpose (a list and a future made only while the
    socket waits): an idle console costs memory for hours, times thousands of sockets."""

    __slots__ = (
        "_limit",
        "_transport",
        "_unsent",
        "_waiter",
        "batch",
        "ended",
        "frames",
        "last_sent",
        "overflowed",
        "staff",
    )

    def __init__(self, limit: int, *, staff: bool, batch: bool = True) -> None:
        self._limit = limit
        self._waiter: asyncio.Future[None] | None = None
        self._transport: Transport | None = None
        self._unsent: _Unsent | None = None  # only while the transport holds unsent bytes
        self.staff = staff
        self.batch = batch
        self.frames: list[Frame] = []
        self.last_sent = 0  # seq, once the reader writes to the socket itself
        self.overflowed = False
        self.ended = False  # the client went away

    def offer(self, batch: _Batch) -> bool:
        if self._transport is not None:
            return self._write(self._transport, batch)
        # The bound is on the backlog a socket has not sent yet, so a reader that keeps up
        # is never dropped however large one burst is; memory stays under limit + one batch.
        if len(self.frames) >= self._limit:
            return self._overflow()
        self.frames.extend(batch.view(staff=self.staff))
        self._wake()
        return True

    def write_directly(self, transport: Transport, last_sent: int) -> None:
        """From now on the reader writes to ``transport``; the caller has sent everything
        up to ``last_sent`` and holds no backlog. Whole frames only, between the server's own
        (uvicorn writes each of its frames in one call), and uncompressed, which stays valid
        when a client negotiated permessage-deflate (RFC 7692: RSV1 unset)."""
        self._transport = transport
        self.last_sent = last_sent

    def _write(self, transport: Transport, batch: _Batch) -> bool:
        if transport.is_closing():
            return True  # the client left: its task ends the subscription
        frames = batch.view(staff=self.staff)
        if frames and frames[0].seq <= self.last_sent:
            # Only just caught up from history: part of this batch was sent already.
            frames = [frame for frame in frames if frame.seq > self.last_sent]
            data = encode(frames, batch=self.batch)
        else:
            data = batch.encoded(staff=self.staff, batch=self.batch)
        if not frames:
            return True
        if not transport.get_write_buffer_size():
            self._unsent = None
        transport.write(data)
        self.last_sent = frames[-1].seq
        left = transport.get_write_buffer_size()
        if not left:
            return True
        # The kernel refused part of it: track which writes still wait, to count the frames
        # behind as the backlog path does.
        unsent = self._unsent = self._unsent or _Unsent()
        if unsent.add(len(data), len(frames), left) >= self._limit:
            return self._overflow()
        return True

    def _overflow(self) -> bool:
        self.overflowed = True
        self._wake()
        return False

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
        batch = _Batch(frames)
        overflowed = [sub for sub in self.subscribers if not sub.offer(batch)]
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
