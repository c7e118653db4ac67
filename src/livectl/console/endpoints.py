from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, WebSocket
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Receive, Scope, Send

from livectl import metrics
from livectl.auth.dependencies import authorize_socket, refuse_socket
from livectl.auth.tokens import Role, role_allows
from livectl.bus.keys import Channel
from livectl.console.hub import Hub
from livectl.console.session import ChannelSession
from livectl.console.snapshot import console_snapshot, live_snapshot
from livectl.errors import LivectlError, ServiceUnavailable, ValidationFailed
from livectl.kit.ids import ID_PATTERN, RoomIdPath
from livectl.resources import Resources, socket_resources
from livectl.rooms.service import RoomCache

router = APIRouter(prefix="/v1/rooms", tags=["console"])

SnapshotBuilder = Callable[[Resources, str], Awaitable[dict[str, Any]]]


def _since(websocket: WebSocket) -> int | None:
    raw = websocket.query_params.get("since")
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise ValidationFailed("since must be a message seq (a whole number >= 0)")
    return int(raw)


async def _serve(
    websocket: WebSocket, room: str, channel: Channel, required: Role, snapshot: SnapshotBuilder
) -> None:
    principal = await authorize_socket(websocket, required, room)
    if principal is None:
        return
    resources = socket_resources(websocket)
    try:
        since = _since(websocket)
        await RoomCache(resources).state(room)  # 404 before the upgrade for unknown rooms
    except LivectlError as exc:
        await refuse_socket(websocket, exc)
        return
    except RedisError as exc:
        await refuse_socket(websocket, ServiceUnavailable(f"the room state store: {exc}"))
        return
    hub: Hub = websocket.app.state.hub
    await websocket.accept()
    session = ChannelSession(
        websocket,
        resources,
        hub,
        room=room,
        channel=channel,
        batch=websocket.query_params.get("batch") in ("1", "true"),
        # Hidden chat and other staff-only messages reach assistants and up, never a host view.
        staff=channel is Channel.CONSOLE and role_allows(principal.role, Role.ASSISTANT),
        snapshot=lambda: snapshot(resources, room),
    )
    metrics.SOCKETS_OPEN.labels(channel.value).inc()
    try:
        await session.run(since)
    finally:
        metrics.SOCKETS_OPEN.labels(channel.value).dec()


@router.websocket("/{room}/console")
async def console_socket(websocket: WebSocket, room: RoomIdPath) -> None:
    """Everything for the host, assistant and controller consoles (host and up).

    ``?since=SEQ`` resumes after SEQ; ``?batch=1`` lets a frame carry several envelopes, one
    per line, which busy rooms need (one frame per message tops out far lower)."""
    await _serve(websocket, room, Channel.CONSOLE, Role.HOST, console_snapshot)


@router.websocket("/{room}/live")
async def live_socket(websocket: WebSocket, room: RoomIdPath) -> None:
    """The public subset for viewer apps and overlays (player and up)."""
    await _serve(websocket, room, Channel.LIVE, Role.PLAYER, live_snapshot)


_SOCKET_PATH = re.compile(rf"^/v1/rooms/({ID_PATTERN[1:-1]})/(console|live)$")


class ConsoleSocketsFirst:
    """Middleware: console and live sockets go straight to their handler.

    They are the connections that stay open for hours by the thousand, and the framework's
    routing, dependency solving and exception middleware keep several KB of frames and exit
    stacks alive per connection for its whole life. The handlers check the token and room
    themselves and never raise. Anything else, malformed room ids included, takes the normal
    route (which answers those with 422).
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _SOCKET_PATH.match(scope["path"]) if scope["type"] == "websocket" else None
        if match is None:
            await self._app(scope, receive, send)
            return
        websocket = WebSocket(scope, receive, send)
        room, channel = match.groups()
        await (console_socket if channel == "console" else live_socket)(websocket, room)
