"""Minimal WebSocket and HTTP/1.1 clients on asyncio Protocols, cheap enough to load 2 cores.

The ``websockets`` client spends tens of microseconds of Python per message (a task hop, a
frame object, masking) and httpx about two milliseconds per 130 KB request; at the rates
measured here that would take CPU the gateway needs. Here a request or frame is encoded (and
masked) once and written as is after that, and every answer goes straight from
``data_received`` to a callback: no task, no queue, no copy beyond slicing it out of the
buffer. They speak only what the bench needs: text frames, ping/pong and close without
extensions (like a bridge or bot; browsers negotiate compression), and keep-alive requests
answered with a Content-Length.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from collections.abc import Callable
from typing import cast

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
_FINAL_TEXT = 0x80 | OP_TEXT
# What a connection that ended without a close frame reports (RFC 6455, 7.1.5).
CLOSED_ABNORMALLY = 1006

MessageHandler = Callable[[bytes], None]
ResponseHandler = Callable[[int, bytes], None]  # status, body


class HandshakeError(Exception):
    """The server answered the upgrade with something other than 101."""


def encode_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    """One final client frame, masked (clients must mask) with a fresh random key."""
    key = os.urandom(4)
    size = len(payload)
    first = bytes([0x80 | opcode])
    if size < 126:
        header = first + bytes([0x80 | size])
    elif size < 1 << 16:
        header = first + bytes([0x80 | 126]) + size.to_bytes(2, "big")
    else:
        header = first + bytes([0x80 | 127]) + size.to_bytes(8, "big")
    # XOR through big integers: done in C, so masking a 60 KB batch costs microseconds.
    stream = (key * (size // 4 + 1))[:size]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")
    return header + key + masked


class WsClient(asyncio.Protocol):
    def __init__(self, request: bytes, on_message: MessageHandler) -> None:
        loop = asyncio.get_running_loop()
        self.opened: asyncio.Future[None] = loop.create_future()
        # Resolves with the close code the server sent, or CLOSED_ABNORMALLY.
        self.closed: asyncio.Future[int] = loop.create_future()
        self._request = request
        self._on_message = on_message
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's does not subclass asyncio.Transport, so no isinstance).
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        if (
            self._upgraded
            and not self._buffer
            and len(data) >= 2
            and data[0] == _FINAL_TEXT
            and data[1] < 126
            and len(data) == 2 + data[1]
        ):
            # Exactly one whole short text frame, as most answers come: no buffering. The
            # clients share the 2 cores with the server they measure.
            self._on_message(data[2:])
            return
        if self.opened.done() and not self._upgraded:
            return  # refused: what follows is the rest of the error body
        self._buffer += data
        if not self._upgraded and not self._read_handshake():
            return
        self._read_frames()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(CLOSED_ABNORMALLY)

    def send(self, frame: bytes) -> None:
        """Write a frame made by :func:`encode_frame`."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(frame)

    def pause_reading(self) -> None:
        """Stop reading: the server's sends back up as they would to a stalled peer."""
        if self._transport is not None:
            self._transport.pause_reading()

    def close(self, code: int = 1000) -> None:
        """Send a close frame and drop the connection without waiting for the echo."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(encode_frame(code.to_bytes(2, "big"), OP_CLOSE))
            self._transport.close()

    def _read_handshake(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        status_line = bytes(self._buffer[: self._buffer.find(b"\r\n")])
        parts = status_line.split(b" ", 2)
        refused = None
        if len(parts) < 2 or parts[1] != b"101":
            body = bytes(self._buffer[end + 4 :])[:200]
            refused = f"{status_line.decode()}: {body.decode()}"
        elif b"\r\nsec-websocket-extensions:" in bytes(self._buffer[:end]).lower():
            # Compressed frames are not decoded here, and would not be measured as a browser
            # gets them.
            refused = "the server accepted permessage-deflate"
        if refused is not None:
            self.opened.set_exception(HandshakeError(refused))
            assert self._transport is not None
            self._transport.close()
            return False
        del self._buffer[: end + 4]
        self._upgraded = True
        self.opened.set_result(None)
        return True

    def _read_frames(self) -> None:
        buffer = self._buffer
        size = len(buffer)
        position = 0
        view = memoryview(buffer)
        try:
            while size - position >= 2:
                first, second = buffer[position], buffer[position + 1]
                length = second & 0x7F
                start = position + 2
                if length == 126:
                    start += 2
                    if start > size:
                        break
                    length = int.from_bytes(view[position + 2 : start], "big")
                elif length == 127:
                    start += 8
                    if start > size:
                        break
                    length = int.from_bytes(view[position + 2 : start], "big")
                end = start + length  # servers never mask, so the payload follows the length
                if end > size:
                    break
                payload = view[start:end].tobytes()
                position = end
                self._frame(first & 0x0F, bool(first & 0x80), payload)
        finally:
            view.release()
        if position:
            del buffer[:position]

    def _frame(self, opcode: int, final: bool, payload: bytes) -> None:
        if opcode in (OP_TEXT, OP_CONTINUATION):
            if not final:
                self._fragments.append(payload)
                return
            if self._fragments:
                payload = b"".join([*self._fragments, payload])
                self._fragments.clear()
            self._on_message(payload)
        elif opcode == OP_PING:
            # uvicorn closes a socket whose pings go unanswered for 20 s.
            self.send(encode_frame(payload, OP_PONG))
        elif opcode == OP_CLOSE:
            code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
            if not self.closed.done():
                self.closed.set_result(code)
            self.close(code if code != 1005 else 1000)


async def connect(
    host: str,
    port: int,
    path: str,
    on_message: MessageHandler,
    *,
    limit_s: float = 30.0,
    receive_buffer: int | None = None,
) -> WsClient:
    """Open a socket to ``ws://host:port/path`` and finish the upgrade; with
    ``receive_buffer``, the kernel's receive buffer is fixed at that size before connecting
    (a phone on a poor network: a peer that stops reading backs the server up within seconds)."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        # What every browser offers: the server's answer decides what a socket costs it.
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), limit_s)
    except BaseException:
        sock.close()
        raise
    _, client = await loop.create_connection(lambda: WsClient(request, on_message), sock=sock)
    await asyncio.wait_for(client.opened, limit_s)
    return client


def encode_post(host: str, port: int, path: str, token: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class HttpClient(asyncio.Protocol):
    """One keep-alive connection; one request at a time (no pipelining)."""

    def __init__(self, on_response: ResponseHandler) -> None:
        loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[int] = loop.create_future()
        self._on_response = on_response
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while (end := buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(buffer[:end]).lower()
            marker = head.find(b"\r\ncontent-length:")
            if marker < 0:
                raise ValueError(f"a response without Content-Length: {head[:200]!r}")
            line_end = head.find(b"\r\n", marker + 2)
            length = int(head[marker + 17 : line_end if line_end >= 0 else len(head)])
            if len(buffer) < end + 4 + length:
                return
            body = bytes(buffer[end + 4 : end + 4 + length])
            del buffer[: end + 4 + length]
            self._on_response(int(head[9:12]), body)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(CLOSED_ABNORMALLY)

    def send(self, request: bytes) -> None:
        """Write a request made by :func:`encode_post`."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(request)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def connect_http(
    host: str, port: int, on_response: ResponseHandler, *, limit_s: float = 30.0
) -> HttpClient:
    loop = asyncio.get_running_loop()
    _, client = await asyncio.wait_for(
        loop.create_connection(lambda: HttpClient(on_response), host, port), limit_s
    )
    return client
