"""Long-lived sockets skip the framework's per-request machinery.

Console, live, ingest and claim sockets stay open for hours, by the thousand. FastAPI's routing,
dependency solving and exception middleware keep several KB of frames and exit stacks alive
per connection for its whole life, and wrap every frame sent. Their handlers check the token
and room themselves and answer every error on their own, so this middleware hands them the
connection directly. Anything else, malformed room ids included, takes the normal route
(which answers those with 422).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from fastapi import WebSocket
from starlette.types import ASGIApp, Receive, Scope, Send

from livectl.console.endpoints import console_socket, live_socket
from livectl.coupons.endpoints import claim_socket
from livectl.ingest.endpoints import ingest_socket
from livectl.kit.ids import ID_PATTERN

_HANDLERS: dict[str, Callable[[WebSocket, str], Awaitable[None]]] = {
    "console": console_socket,
    "live": live_socket,
    "ingest": ingest_socket,
    "claims": claim_socket,
}
_PATH = re.compile(rf"^/v1/rooms/({ID_PATTERN[1:-1]})/({'|'.join(_HANDLERS)})$")


class LongLivedSocketsFirst:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _PATH.match(scope["path"]) if scope["type"] == "websocket" else None
        if match is None:
            await self._app(scope, receive, send)
            return
        room, kind = match.groups()
        await _HANDLERS[kind](WebSocket(scope, receive, send), room)
