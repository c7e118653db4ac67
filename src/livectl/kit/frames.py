"""Request-and-answer sockets: every text frame in, one answer out, in order.

A client that sends frames back to back must not wait a Redis round trip per frame: each
frame's ordered part (parsing, handing it to a batcher) runs as it arrives, and its answer
is sent when ready, in frame order. At most ``_IN_FLIGHT`` frames wait for their answers;
past that the socket stops reading (backpressure, bounded memory).

Served by ``livectl api``, the gateway's WebSocket protocol (``livectl.serving``) offers the
``livectl.frames`` ASGI extension: past the handshake, frames come straight from the protocol
and answers go straight to it, from the callback that completes them. Through ASGI every
frame cost two queue hops, a task switch for its answer and a pause and resume of reading
(with the rest of that change, one-event frames went from about 100 to about 40 µs of gateway
CPU each: docs/performance.md). Any other ASGI server gets the same answers over plain ASGI
messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from fastapi import WebSocket, WebSocketDisconnect

from livectl import metrics
from livectl.errors import BinaryFrame, FrameTooLarge, LivectlError, socket_error

log = logging.getLogger("livectl.sockets")

# The ASGI extension (a key of the scope's "extensions") through which a server offers a
# DirectFrames for the connection, as {"socket": DirectFrames}.
DIRECT_FRAMES = "livectl.frames"

_IN_FLIGHT = 64
# A close frame's reason has room for 123 bytes; the details used here are ASCII.
_MAX_CLOSE_REASON = 120

# Does a frame's ordered part and returns its answer to come (a future or task).
FrameAnswer = Callable[[str], Awaitable["asyncio.Future[str]"]]
# The same with no wait, as the frame is read (its UTF-8 bytes, not yet checked: an answer fails
# on text that is not UTF-8 before doing anything): None, having done nothing, when it would wait.
FrameAnswerNow = Callable[[bytes], "asyncio.Future[str] | None"]


class DirectFrames(Protocol):
    """An accepted WebSocket as the server holds it, past ASGI."""

    async def receive_frame(self) -> str | bytes | None:
        """The next whole message (``str`` for text); None once the peer is gone."""

    def send_text(self, text: str) -> None:
        """Write a text frame now (dropped once the connection is closing)."""

    def take_frames(self, take: Callable[[bytes], bool]) -> None:
        """Offer each text frame to ``take`` as it is read, undecoded, while none waits to be
        received and an answer could be written. A frame it declines (False) waits for
        receive_frame, and one that is not UTF-8 fails the connection (1007) instead: ``take``
        declines every frame it finds is not UTF-8."""


async def answer_frames(
    websocket: WebSocket, kind: str, answer: FrameAnswer, answer_now: FrameAnswerNow | None = None
) -> None:
    """Accept, then answer each frame with what ``answer`` gives, or with the error it
    raised as ``{"type": "error", "error", "detail"}``. Binary and oversized frames are
    refused one by one; the socket stays open for the next frame whatever one frame was,
    unless its error has a close code (a limit): then that closes the socket. Where the
    server offers direct frames, ``answer_now`` answers frames as they are read, with no task
    switch, whenever it can do so without waiting."""
    max_frame = websocket.app.state.resources.settings.max_frame_bytes
    offered = websocket.scope.get("extensions", {}).get(DIRECT_FRAMES)
    direct: DirectFrames | None = None if offered is None else offered["socket"]
    await websocket.accept()
    metrics.SOCKETS_OPEN.labels(kind).inc()
    try:
        if direct is None:
            await _answer_over_asgi(websocket, max_frame, answer)
        else:
            await _DirectAnswers(websocket, direct, max_frame, answer, answer_now).run()
    finally:
        metrics.SOCKETS_OPEN.labels(kind).dec()


class _DirectAnswers:
    """Frames of a direct socket answered in order, each answer written by the callback that
    completes it, no task between. Frames are answered as they are read (``answer_now``)
    unless one waits before them; the others wait for ``run``, which may wait in turn. An
    error with a close code, or one that is not a LivectlError, closes the socket."""

    def __init__(
        self,
        websocket: WebSocket,
        direct: DirectFrames,
        max_frame: int,
        answer: FrameAnswer,
        answer_now: FrameAnswerNow | None,
    ) -> None:
        self._websocket = websocket
        self._direct = direct
        self._max_frame = max_frame
        self._answer = answer
        self._answer_now = answer_now
        self._waiting: deque[asyncio.Future[str]] = deque()
        self._room: asyncio.Future[None] | None = None
        # False while run() is between taking a frame and holding its answer (frames read
        # meanwhile wait their turn), and once it has returned.
        self._taking_now = False
        self.closing: asyncio.Future[None] | None = None
        self._on_done = self._send_ready  # (bound once, not once a frame)

    async def run(self) -> None:
        if self._answer_now is not None:
            self._direct.take_frames(self._take_now)
        self._taking_now = True
        try:
            while self.closing is None:
                frame = await self._direct.receive_frame()
                if frame is None:
                    return
                self._taking_now = False
                try:
                    pending = await self._answer(_text(frame, self._max_frame))
                except LivectlError as exc:
                    pending = _failed(exc)
                    if exc.close_code is not None:
                        # The answers before this frame go out first, then this one closes.
                        self._add(pending)
                        await self._until_fewer_than(1)
                        break
                self._add(pending)
                self._taking_now = True
                await self._until_fewer_than(_IN_FLIGHT)
            if self.closing is not None:
                with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                    await self.closing
        finally:
            self._taking_now = False
            while self._waiting:  # answers nobody will read: their errors are not news
                self._waiting.popleft().add_done_callback(_forget)

    def _take_now(self, frame: bytes) -> bool:
        answer_now = self._answer_now
        if (
            answer_now is None
            or not self._taking_now
            or self.closing is not None
            or len(self._waiting) >= _IN_FLIGHT
            or len(frame) > self._max_frame  # (run() refuses it)
        ):
            return False
        try:
            # Undecoded: JSON is parsed from the bytes (orjson checks UTF-8 before parsing), not
            # decoded here and encoded again there.
            pending = answer_now(frame)
        except LivectlError as exc:
            # With a close code, run() answers it again and closes in order; text that is not
            # UTF-8 failed before any effect, and the protocol fails the connection.
            if exc.close_code is not None or not _is_utf8(frame):
                return False
            pending = _failed(exc)
        except Exception:  # run() answers it again, and fails as a task does
            return False
        if pending is None:
            return False
        self._add(pending)
        return True

    def _add(self, pending: asyncio.Future[str]) -> None:
        self._waiting.append(pending)
        pending.add_done_callback(self._on_done)

    async def _until_fewer_than(self, count: int) -> None:
        """Returns once fewer than ``count`` answers wait, or the socket is closing."""
        while len(self._waiting) >= count and self.closing is None:
            self._room = asyncio.get_running_loop().create_future()
            await self._room

    def _send_ready(self, _: asyncio.Future[str]) -> None:
        waiting = self._waiting
        while waiting and waiting[0].done() and self.closing is None:
            pending = waiting.popleft()
            if pending.cancelled():
                continue
            exc = pending.exception()
            if exc is None:
                self._direct.send_text(pending.result())
            elif isinstance(exc, LivectlError):
                self._direct.send_text(_refusal(exc))
                if exc.close_code is not None:
                    reason = exc.detail[:_MAX_CLOSE_REASON]
                    self.closing = asyncio.ensure_future(
                        self._websocket.close(exc.close_code, reason)
                    )
            else:
                log.error("answering a frame failed", exc_info=exc)
                self.closing = asyncio.ensure_future(self._websocket.close(1011))
        if self._room is not None and not self._room.done():
            self._room.set_result(None)


async def _answer_over_asgi(websocket: WebSocket, max_frame: int, answer: FrameAnswer) -> None:
    answers: asyncio.Queue[asyncio.Future[str]] = asyncio.Queue(_IN_FLIGHT)
    sender = asyncio.create_task(_send_in_order(websocket, answers))
    try:
        while not sender.done():
            frame = asgi_frame(await websocket.receive())
            if frame is None:
                return
            try:
                pending = await answer(_text(frame, max_frame))
            except LivectlError as exc:
                if exc.close_code is not None:
                    # The answers before this frame go out first; then the sender closes.
                    await answers.put(_failed(exc))
                    await sender
                    return
                pending = _failed(exc)
            await answers.put(pending)
    except WebSocketDisconnect:
        return
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await sender
        while not answers.empty():  # answers nobody will read: their errors are not news
            answers.get_nowait().add_done_callback(_forget)


async def _send_in_order(websocket: WebSocket, answers: asyncio.Queue[asyncio.Future[str]]) -> None:
    while True:
        pending = await answers.get()
        try:
            text = await pending
        except LivectlError as exc:
            await websocket.send_text(_refusal(exc))
            if exc.close_code is not None:
                await websocket.close(exc.close_code, exc.detail[:_MAX_CLOSE_REASON])
                return
            continue
        await websocket.send_text(text)


def asgi_frame(message: Mapping[str, Any]) -> str | bytes | None:
    """What an ASGI WebSocket message carries: a frame's text or bytes; None for a disconnect."""
    if message["type"] != "websocket.receive":
        return None
    text: str | None = message.get("text")
    return message.get("bytes", b"") if text is None else text


def _is_utf8(frame: bytes) -> bool:
    try:
        frame.decode()
    except UnicodeDecodeError:
        return False
    return True


def _text(frame: str | bytes, max_frame: int) -> str:
    """The frame's text; BinaryFrame or FrameTooLarge for a frame no answer takes."""
    if not isinstance(frame, str):
        raise BinaryFrame("frames must be text (UTF-8 JSON), not binary")
    # A str has at most 4 UTF-8 bytes per character: encode only when it may matter.
    if len(frame) > max_frame // 4 and len(frame.encode()) > max_frame:
        raise FrameTooLarge(f"the frame passed {max_frame} bytes")
    return frame


def _refusal(exc: LivectlError) -> str:
    metrics.REQUESTS_REFUSED.labels(exc.code).inc()
    return socket_error(exc)


def _failed(exc: LivectlError) -> asyncio.Future[str]:
    failed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    failed.set_exception(exc)
    return failed


def _forget(future: asyncio.Future[str]) -> None:
    if not future.cancelled():
        future.exception()
