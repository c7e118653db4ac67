"""Request-and-answer sockets: every text frame in, one answer out, in order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import WebSocket, WebSocketDisconnect

from livectl import metrics
from livectl.errors import BinaryFrame, FrameTooLarge, LivectlError, socket_error

FrameAnswer = Callable[[str], Awaitable[str]]


async def answer_frames(websocket: WebSocket, kind: str, answer: FrameAnswer) -> None:
    """Accept, then answer each frame with what ``answer`` returns, or with the error it
    raised as ``{"type": "error", "error", "detail"}``. Binary and oversized frames are
    refused one by one; the socket stays open for the next frame whatever one frame was."""
    max_frame = websocket.app.state.resources.settings.max_frame_bytes
    await websocket.accept()
    metrics.SOCKETS_OPEN.labels(kind).inc()
    try:
        while True:
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
                reply = await answer(text)
            except LivectlError as exc:
                metrics.REQUESTS_REFUSED.labels(exc.code).inc()
                reply = socket_error(exc)
            await websocket.send_text(reply)
    except WebSocketDisconnect:
        return
    finally:
        metrics.SOCKETS_OPEN.labels(kind).dec()
