"""One console or live-channel socket: catch up (history or snapshot), then follow live."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from livectl.bus.keys import Channel, RawEntry, RoomKeys
from livectl.bus.publish import seq_of
from livectl.console.hub import Frame, Hub, Subscriber, Transport, frame_of
from livectl.errors import RateLimited, socket_error
from livectl.kit import codec
from livectl.kit.clock import now_ms
from livectl.limits.rules import FixedWindow
from livectl.resources import Resources

SLOW_CONSUMER = 4008
_HISTORY_PAGE = 1000
_CLOSE_TIMEOUT_S = 2.0
# A console only sends small control messages (ping); anything larger is refused.
_MAX_CLIENT_MESSAGE = 4096

Snapshot = Callable[[], Awaitable[dict[str, Any]]]


class ChannelSession:
    def __init__(
        self,
        websocket: WebSocket,
        resources: Resources,
        hub: Hub,
        *,
        room: str,
        channel: Channel,
        batch: bool,
        staff: bool,
        snapshot: Snapshot,
    ) -> None:
        self._ws = websocket
        self._redis = resources.redis
        self._hub = hub
        self._room = room
        self._channel = channel
        self._keys = RoomKeys(room)
        self._batch = batch
        self._snapshot = snapshot
        self._send_buffer = resources.settings.console_send_buffer_bytes
        self._subscriber = Subscriber(
            resources.settings.console_queue_frames, staff=staff, batch=batch
        )
        self._client_messages = FixedWindow(resources.settings.console_messages_per_s)

    async def run(self, since: int | None) -> None:
        await self._hub.subscribe(self._room, self._channel, self._subscriber)
        # One task besides this one: it answers the client and, when the client leaves, ends
        # the subscriber so the send loop below returns (tasks are most of an idle socket's
        # memory).
        receiver = asyncio.create_task(self._answer_client())
        receiver.add_done_callback(lambda _: self._subscriber.end())
        try:
            await self._follow(await self._catch_up(since))
            if self._subscriber.overflowed:
                await self._close(SLOW_CONSUMER, "too slow: reconnect with since")
        except WebSocketDisconnect:
            pass
        finally:
            receiver.cancel()
            self._hub.unsubscribe(self._room, self._channel, self._subscriber)

    async def _catch_up(self, since: int | None) -> int:
        """Send what the client missed; return the last seq it now has."""
        latest = int(await self._redis.get(self._keys.channel_seq(self._channel)) or 0)
        if since is None:
            return await self._send_snapshot(latest)
        if since > latest:
            return await self._reset("seq_ahead", latest)
        if since == latest:
            return since
        stream = self._keys.channel(self._channel)
        expected = since + 1
        while True:
            entries: list[RawEntry] = await self._redis.xrange(  # type: ignore[assignment]
                stream, f"{expected}-0", "+", count=_HISTORY_PAGE
            )
            if not entries or seq_of(entries[0][0]) != expected:
                # Trimmed away while we looked, or long gone: the gap cannot be filled.
                return await self._reset("history_gap", latest)
            frames = [frame_of(entry_id, fields) for entry_id, fields in entries]
            await self._send([f.text for f in frames if self._subscriber.staff or not f.staff_only])
            expected = seq_of(entries[-1][0]) + 1
            if len(entries) < _HISTORY_PAGE:
                return expected - 1

    async def _reset(self, reason: str, latest: int) -> int:
        await self._send(
            [codec.dumps_str({"type": "reset", "ts": now_ms(), "data": {"reason": reason}})]
        )
        return await self._send_snapshot(latest)

    async def _send_snapshot(self, latest: int) -> int:
        # Anything published after `latest` is delivered live, so the snapshot may already
        # reflect a message the client then also receives; every message is idempotent state.
        data = await self._snapshot()
        envelope = {"seq": latest, "type": "snapshot", "ts": now_ms(), "data": data}
        await self._send([codec.dumps_str(envelope)])
        return latest

    async def _follow(self, last_sent: int) -> None:
        subscriber = self._subscriber
        transport = server_transport(self._ws)
        while True:
            if transport is not None and not subscriber.frames:
                # Caught up, nothing in hand: from here the room's reader writes each batch
                # to this socket itself, and this task only waits for the end.
                sock = transport.get_extra_info("socket")
                if sock is not None and self._send_buffer is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._send_buffer)
                subscriber.write_directly(transport, last_sent)
                transport = None
            await subscriber.wait()
            if subscriber.overflowed or subscriber.ended:
                return
            frames: list[Frame] = subscriber.take()
            texts = [frame.text for frame in frames if frame.seq > last_sent]
            if texts:
                last_sent = frames[-1].seq
                await self._send(texts)

    async def _send(self, texts: list[str]) -> None:
        if self._batch:
            await self._ws.send_text("\n".join(texts))
        else:
            for text in texts:
                await self._ws.send_text(text)

    async def _answer_client(self) -> None:
        while True:
            message = await self._ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if not self._client_messages.admit(1, time.time()):
                limited = RateLimited(f"at most {self._client_messages.limit} messages per second")
                await self._ws.send_text(socket_error(limited))
                await self._close(RateLimited.close_code, limited.detail)
                return
            text = message.get("text")
            reply: dict[str, Any]
            if text is not None and len(text) <= _MAX_CLIENT_MESSAGE and _is_ping(text):
                reply = {"type": "pong", "ts": now_ms()}
            else:
                reply = {
                    "type": "error",
                    "error": "unknown_message",
                    "detail": 'consoles may send {"type": "ping"} only',
                }
            await self._ws.send_text(codec.dumps_str(reply))

    async def _close(self, code: int, reason: str) -> None:
        if self._ws.client_state is not WebSocketState.CONNECTED:
            return
        try:
            # A client that stopped reading has a full send buffer, so a polite close could
            # wait forever; past the timeout the connection is cut.
            await asyncio.wait_for(self._ws.close(code, reason), _CLOSE_TIMEOUT_S)
        except (TimeoutError, RuntimeError, WebSocketDisconnect):
            abort_transport(self._ws)


def _is_ping(text: str) -> bool:
    try:
        message = codec.loads(text)
    except codec.JSONDecodeError:
        return False
    return isinstance(message, dict) and message.get("type") == "ping"


def server_transport(websocket: WebSocket) -> Transport | None:
    """The TCP transport under a socket, reached through the server's protocol object behind
    the ``send`` callable (uvicorn's); None for a server we do not know.

    ASGI offers neither a way to abort a connection nor one to write bytes encoded once for
    many sockets; both need it.
    """
    protocol = getattr(websocket._send, "__self__", None)
    transport = getattr(protocol, "transport", None)
    needed = ("write", "get_write_buffer_size", "is_closing", "get_extra_info", "abort")
    if transport is None or not all(callable(getattr(transport, n, None)) for n in needed):
        return None
    return cast(Transport, transport)


def abort_transport(websocket: WebSocket) -> None:
    """Drop the TCP connection under a socket whose peer no longer reads (a close frame
    cannot be written past a full buffer). If the server is not one we know, the server's own
    ping timeout ends it."""
    transport = server_transport(websocket)
    if transport is not None:
        cast(asyncio.Transport, transport).abort()
