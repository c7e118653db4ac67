"""Request-and-answer sockets: every text frame in, one answer out, in order.

A client that sends frames back to back must not wait a Redis round trip per frame: each
frame's ordered part (parsing, handing it to a batcher) runs as it arrives, and its answer
is sent when ready, in frame order, by a second task. At most ``_IN_FLIGHT`` frames wait for
their answers; past that the socket stops reading (backpressure, bounded memory).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from fastapi import WebSocket, WebSocketDisconnect

from livectl import metrics
from livectl.errors import BinaryFrame, FrameTooLarge, LivectlError, socket_error

_IN_FLIGHT = 64
# A close frame's reason has room for 123 bytes; the details used here are ASCII.
_MAX_CLOSE_REASON = 120

# Does a frame's ordered part and returns its answer to come (a future or task).
FrameAnswer = Callable[[str], Awaitable["asyncio.Future[str]"]]


async def answer_frames(websocket: WebSocket, kind: str, answer: FrameAnswer) -> None:
    """Accept, then answer each frame with what ``answer`` gives, or with the error it
    raised as ``{"type": "error", "error", "detail"}``. Binary and oversized frames are
    refused one by one; the socket stays open for the next frame whatever one frame was,
    unless its error has a close code (a limit): then that closes the socket."""
    max_frame = websocket.app.state.resources.settings.max_frame_bytes
    await websocket.accept()
    metrics.SOCKETS_OPEN.labels(kind).inc()
    answers: asyncio.Queue[asyncio.Future[str]] = asyncio.Queue(_IN_FLIGHT)
    sender = asyncio.create_task(_send_in_order(websocket, answers))
    try:
        while not sender.done():
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            try:
                if text is None:
                    raise BinaryFrame("frames must be text (UTF-8 JSON), not binary")
                # A str has at most 4 UTF-8 bytes per character: encode only when it may matter.
                if len(text) > max_frame // 4 and len(text.encode()) > max_frame:
                    raise FrameTooLarge(f"the frame passed {max_frame} bytes")
                pending = await answer(text)
            except LivectlError as exc:
                if exc.close_code is not None:
                    # The answers before this frame go out first; then the sender closes.
                    await answers.put(_failed(exc))
                    await sender
                    return
                pending = _refused(exc)
            await answers.put(pending)
    except WebSocketDisconnect:
        return
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await sender
        while not answers.empty():  # answers nobody will read: their errors are not news
            answers.get_nowait().add_done_callback(_forget)
        metrics.SOCKETS_OPEN.labels(kind).dec()


async def _send_in_order(websocket: WebSocket, answers: asyncio.Queue[asyncio.Future[str]]) -> None:
    while True:
        pending = await answers.get()
        try:
            text = await pending
        except LivectlError as exc:
            await websocket.send_text(_refused(exc).result())
            if exc.close_code is not None:
                await websocket.close(exc.close_code, exc.detail[:_MAX_CLOSE_REASON])
                return
            continue
        await websocket.send_text(text)


def _refused(exc: LivectlError) -> asyncio.Future[str]:
    metrics.REQUESTS_REFUSED.labels(exc.code).inc()
    refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    refused.set_result(socket_error(exc))
    return refused


def _failed(exc: LivectlError) -> asyncio.Future[str]:
    failed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    failed.set_exception(exc)
    return failed


def _forget(future: asyncio.Future[str]) -> None:
    if not future.cancelled():
        future.exception()
