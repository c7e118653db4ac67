"""``livectl api --processes N``: N gateway processes, each accepting on a socket of its own,
with the gateway's WebSocket protocol.

uvicorn's own workers share one listening socket, and the process that wakes first accepts
every connection waiting: 32 REST connections opened together all landed on one of two
processes, which served them with one core while the other stayed idle. With SO_REUSEPORT each
process listens on its own socket bound to the same port, and the kernel spreads new
connections over them by their addresses.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import signal
import socket
from asyncio import BaseTransport
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any, Literal

import uvicorn
from uvicorn._types import ASGIReceiveEvent, ASGISendEvent
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from livectl.kit.frames import DIRECT_FRAMES, asgi_frame

try:
    from websockets.speedups import apply_mask
except ImportError:  # websockets built without its C extension
    from websockets.utils import apply_mask

log = logging.getLogger("livectl.api")

_STOP_GRACE_S = 10.0
# A direct socket stops reading once this many messages wait for its app to take them.
_HELD_MESSAGES = 4
# First bytes of the frames read here (RFC 6455 5.2): FIN, no RSV bits (not compressed), and
# text or binary. Anything else goes to websockets' parser, a whole frame at a time.
_WHOLE_MESSAGE: dict[int, Literal["text", "bytes"]] = {0x81: "text", 0x82: "bytes"}
_MASKED = 0x80


class GatewayWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, offering its connections to the app past the
    handshake as ``kit.frames.DirectFrames`` (the ``livectl.frames`` ASGI extension).

    Once the app reads a socket directly, messages still go through the protocol's queue, so
    every way a connection ends reaches the reader as uvicorn tells it; but reading pauses only
    when ``_HELD_MESSAGES`` wait, not after each message until the app takes it (two epoll
    changes per frame), and answers are written in the call, with no ASGI message between.
    Past the handshake, whole unfragmented data frames are read here too, on every socket;
    websockets' parser takes every other frame and fails the connection on bad ones.
    """

    _direct = False
    _take: Callable[[bytes], bool] | None = None
    # Bytes past the last whole frame read here; None while websockets' parser reads (the
    # handshake, and a socket whose first frame came with its handshake).
    _unread: bytearray | None = None

    def data_received(self, data: bytes) -> None:
        unread = self._unread
        if unread is None:
            if not self._reading_frames_here():
                super().data_received(data)
                return
            unread = self._unread = bytearray()
        if unread:  # a frame split across reads
            unread += data
            del unread[: self._read_frames(unread)]
        else:
            taken = self._read_frames(data)
            if taken < len(data):
                unread += data[taken:]

    def _reading_frames_here(self) -> bool:
        """Past an accepted handshake, with websockets' parser at a frame boundary (nothing
        buffered), whole unfragmented messages are read here: websockets' generator-based
        parser took about a seventh of the gateway's CPU on one-event frames."""
        accepted = self.handshake_complete and self.initial_response is None
        return accepted and not self.close_sent and not self.conn.reader.buffer

    def _read_frames(self, buffer: bytes | bytearray) -> int:
        """Reads the whole frames at the start of ``buffer``; how many bytes they took."""
        start, size = 0, len(buffer)
        while size - start >= 2 and not self.transport.is_closing():
            first, second = buffer[start], buffer[start + 1]
            length, head = second & 0x7F, start + 2
            if length >= 126:
                width = 2 if length == 126 else 8
                if size - head < width:
                    break
                length = int.from_bytes(buffer[head : head + width])
                head += width
            if length > self.config.ws_max_size:
                # websockets fails the connection with 1009 from the header alone.
                super().data_received(bytes(buffer[start:]))
                return size
            mask = 4 if second & _MASKED else 0
            end = head + mask + length
            if end > size:
                break
            kind = _WHOLE_MESSAGE.get(first)
            if kind is None or not mask or self.frames:
                # Control frames, fragments, compressed or unmasked frames: websockets takes
                # the whole frame and is at a frame boundary again after it.
                super().data_received(bytes(buffer[start:end]))
            else:
                self._message(kind, apply_mask(buffer[head + 4 : end], buffer[head : head + 4]))
            start = end
        return start

    def connection_made(self, transport: BaseTransport) -> None:
        upgraded = transport.get_protocol()  # the HTTP protocol, handing the connection on
        super().connection_made(transport)
        # uvicorn breaks its HTTP protocol's cycle with its parser in connection_lost, which
        # an upgraded connection never reaches: broken here, reference counting frees it at
        # once instead of leaving ~18 objects per socket to the cyclic collector.
        if isinstance(upgraded, HttpToolsProtocol):
            upgraded.parser = None  # type: ignore[assignment]

    async def run_asgi(self) -> None:
        self.scope["extensions"][DIRECT_FRAMES] = {"socket": self}
        await super().run_asgi()

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # The handshake's request and response are read only until the handshake is
            # answered; kept for the socket's life, they were about 2 KiB of its memory.
            del self.request, self.response

    def take_frames(self, take: Callable[[bytes], bool]) -> None:
        self._direct = True
        self._take = take

    async def receive_frame(self) -> str | bytes | None:
        self._direct = True
        if not self.writable.is_set():  # the peer is not reading its answers: take no more
            await self.writable.wait()
        message = await self.queue.get()
        if self.read_paused and self.queue.qsize() < _HELD_MESSAGES:
            self.read_paused = False
            self.transport.resume_reading()
        return asgi_frame(message)

    def send_text(self, text: str) -> None:
        if self.close_sent or self.transport.is_closing():
            return
        short = len(text) <= _SHORT_TEXT
        self.transport.write(_short_text_frame(text) if short else _text_frame(text))

    def send_receive_event_to_app(self) -> None:
        """A message websockets' parser read (fragmented, compressed, or before the frames
        were read here)."""
        if not self._direct:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        self._message(self.curr_msg_data_type, data)

    def _message(self, kind: Literal["text", "bytes"], data: bytes) -> None:
        if not self._direct:  # the app reads through ASGI: as uvicorn hands a message on
            self.curr_msg_data_type = kind
            self.frames = [data]
            super().send_receive_event_to_app()
            return
        if self.close_sent:  # as uvicorn: the app is closing, the peer's messages are dropped
            return
        # A text frame is taken at once, undecoded, unless frames wait before it or its answer
        # could not be written now.
        take = self._take
        if (
            kind == "text"
            and take is not None
            and self.queue.empty()
            and self.writable.is_set()
            and take(data)
        ):
            return
        frame: str | bytes = data
        if kind == "text":
            try:
                frame = data.decode()
            except UnicodeDecodeError:
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
        message: ASGIReceiveEvent
        if isinstance(frame, str):
            message = {"type": "websocket.receive", "text": frame}
        else:
            message = {"type": "websocket.receive", "bytes": frame}
        self.queue.put_nowait(message)
        if not self.read_paused and self.queue.qsize() >= _HELD_MESSAGES:
            self.read_paused = True
            self.transport.pause_reading()


def _text_frame(text: str) -> bytes:
    """A whole text frame as a server sends it (RFC 6455 5.2): FIN, unmasked, and not
    compressed, which permessage-deflate allows for any message."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        head = bytes((0x81, length))
    elif length < 1 << 16:
        head = bytes((0x81, 126)) + length.to_bytes(2)
    else:
        head = bytes((0x81, 127)) + length.to_bytes(8)
    return head + payload


# Most answers are a few short texts (an ingest socket's clean acks): their frames are built
# once. Longer ones are not kept.
_SHORT_TEXT = 96
_short_text_frame = functools.lru_cache(maxsize=256)(_text_frame)


def serve(options: dict[str, Any], processes: int) -> int:
    """Serve the app ``uvicorn.run`` would with ``options`` until stopped; the exit status. A
    process that dies stops the others too: the gateway is restarted whole by what runs it
    (``livectl up``, a container's restart policy), and consoles resume with ``since``."""
    # permessage-deflate is declined, though every browser offers it: fan-out frames are
    # encoded once for all of a room's sockets and written uncompressed, so a socket's zlib
    # contexts would only ever compress its snapshot, and they took an idle console from 28
    # to 45-55 KiB of gateway memory.
    options = {**options, "ws_per_message_deflate": False}
    if processes == 1:
        uvicorn.run(**options)
        return 0
    if not hasattr(socket, "SO_REUSEPORT"):  # Windows: uvicorn's workers on one shared socket
        uvicorn.run(**options, workers=processes)
        return 0
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_serve_one, args=(options,), name=f"gateway-{n}")
        for n in range(1, processes + 1)
    ]
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    failed: list[BaseProcess] = []
    try:
        for child in children:
            child.start()
        while not stopping and all(child.is_alive() for child in children):
            wait([child.sentinel for child in children], timeout=0.5)
        if not stopping:  # (on Ctrl-C the terminal signals the children too: they end first)
            failed = [child for child in children if not child.is_alive()]
            for dead in failed:
                log.error("gateway process %s exited with %s", dead.pid, dead.exitcode)
    finally:
        _stop(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if failed else 0


def _serve_one(options: dict[str, Any]) -> None:
    config = uvicorn.Config(**options)
    family, kind, proto, _, address = socket.getaddrinfo(
        config.host, config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind(address)
    # Ctrl-C in a terminal signals every process of its group: uvicorn shuts down gracefully,
    # then raises KeyboardInterrupt again, which would end the process with a traceback.
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run(sockets=[listener])


def _stop(children: Sequence[BaseProcess]) -> None:
    for child in children:
        if child.is_alive():
            child.terminate()  # SIGTERM: uvicorn shuts down gracefully
    for child in children:
        child.join(_STOP_GRACE_S)
        if child.is_alive():
            child.kill()
            child.join()
