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
import logging
import multiprocessing
import signal
import socket
from collections.abc import Sequence
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn
from uvicorn._types import ASGIReceiveEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from livectl.kit.frames import DIRECT_FRAMES, asgi_frame

log = logging.getLogger("livectl.api")

_STOP_GRACE_S = 10.0
# A direct socket stops reading once this many messages wait for its app to take them.
_HELD_MESSAGES = 4


class GatewayWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, offering its connections to the app past the
    handshake as ``kit.frames.DirectFrames`` (the ``livectl.frames`` ASGI extension).

    Once the app reads a socket directly, messages still go through the protocol's queue, so
    every way a connection ends reaches the reader as uvicorn tells it; but reading pauses only
    when ``_HELD_MESSAGES`` wait, not after each message until the app takes it (two epoll
    changes per frame), and answers are written in the call, with no ASGI message between.
    """

    _direct = False

    async def run_asgi(self) -> None:
        self.scope["extensions"][DIRECT_FRAMES] = {"socket": self}
        await super().run_asgi()

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
        self.conn.send_text(text.encode())
        self.transport.write(b"".join(self.conn.data_to_send()))

    def send_receive_event_to_app(self) -> None:
        if not self._direct:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:  # as uvicorn: the app is closing, the peer's messages are dropped
            return
        message: ASGIReceiveEvent
        if self.curr_msg_data_type == "text":
            try:
                message = {"type": "websocket.receive", "text": data.decode()}
            except UnicodeDecodeError:
                self.conn.send_close(1007)
                self.handle_parser_exception()
                return
        else:
            message = {"type": "websocket.receive", "bytes": data}
        self.queue.put_nowait(message)
        if not self.read_paused and self.queue.qsize() >= _HELD_MESSAGES:
            self.read_paused = True
            self.transport.pause_reading()


def serve(options: dict[str, Any], processes: int) -> int:
    """Serve the app ``uvicorn.run`` would with ``options`` until stopped; the exit status. A
    process that dies stops the others too: the gateway is restarted whole by what runs it
    (``livectl up``, a container's restart policy), and consoles resume with ``since``."""
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
