from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, WebSocket
from redis.exceptions import RedisError

from livectl import metrics
from livectl.auth.dependencies import authorize_socket, refuse_socket
from livectl.auth.tokens import Role, role_allows
from livectl.bus.keys import Channel
from livectl.console.hub import Hub
from livectl.console.session import ChannelSession
from livectl.console.snapshot import console_snapshot, live_snapshot
from livectl.errors import LivectlError, OriginNotAllowed, ServiceUnavailable, ValidationFailed
from livectl.kit.ids import RoomIdPath
from livectl.limits.rules import origin_allowed
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
    resources = socket_resources(websocket)
    if channel is Channel.CONSOLE and not origin_allowed(
        websocket.headers.get("origin"),
        websocket.headers.get("host"),
        # Its public URL is the gateway's own origin too (behind a proxy that rewrites Host).
        [*resources.settings.allowed_origins, resources.settings.base_url],
    ):
        # Accepted only to be closed: a browser shows a page the close code, never a status.
        await websocket.accept()
        await websocket.close(OriginNotAllowed.close_code, "origin not allowed")
        return
    principal = await authorize_socket(websocket, required, room)
    if principal is None:
        return
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
    per line, which busy rooms need (one frame per message tops out far lower). A browser
    page of another origin than the gateway's or ``allowed_origins`` is closed with 4003."""
    await _serve(websocket, room, Channel.CONSOLE, Role.HOST, console_snapshot)


@router.websocket("/{room}/live")
async def live_socket(websocket: WebSocket, room: RoomIdPath) -> None:
    """The public subset for viewer apps and overlays (player and up)."""
    await _serve(websocket, room, Channel.LIVE, Role.PLAYER, live_snapshot)
