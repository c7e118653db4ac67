"""Long-lived sockets skip the framework's per-request machinery.

Console, live, ingest and claim sockets stay open for hours, by the thousand. FastAPI's routing,
dependency solving and exception middleware keep several KB of frames and exit stacks alive
per connection for its whole life, and wrap every frame sent. Their handlers check the token
and room themselves and answer every error on their own, so this middleware hands them the
connection directly. Anything else, malformed room ids included, takes the normal route
(which answers those with 422).

Every such socket holds one of its token's open-socket slots while it lives (limits against
abuse); past the limit it is refused before the upgrade with 429 ``rate_limited``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from fastapi import WebSocket
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from livectl.auth.dependencies import refuse_socket, socket_token
from livectl.auth.tokens import verify_token
from livectl.console.endpoints import console_socket, live_socket
from livectl.coupons.endpoints import claim_socket
from livectl.errors import RateLimited, ServiceUnavailable, Unauthorized
from livectl.ingest.endpoints import ingest_socket
from livectl.kit.ids import ID_PATTERN
from livectl.limits.rules import token_id
from livectl.limits.service import GatewayLimits

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
        websocket = WebSocket(scope, receive, send)
        token = socket_token(websocket)
        if token is None or not _signed(websocket, token):
            # The handler refuses it; an unsigned token takes no slot in the shared counts.
            await _HANDLERS[kind](websocket, room)
            return
        limits: GatewayLimits = websocket.app.state.limits
        holder = token_id(token)
        try:
            slot = await limits.take_socket_slot(holder)
        except RateLimited as exc:
            await refuse_socket(websocket, exc)
            return
        except RedisError as exc:
            await refuse_socket(websocket, ServiceUnavailable(f"the limits store: {exc}"))
            return
        try:
            await _HANDLERS[kind](websocket, room)
        finally:
            await limits.release_socket_slot(holder, slot)


def _signed(websocket: WebSocket, token: str) -> bool:
    try:
        verify_token(websocket.app.state.resources.settings.jwt_secret, token)
    except Unauthorized:
        return False
    return True
