"""Who is calling, and may they: one check for every endpoint and socket."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, WebSocket

from livectl.auth.tokens import Principal, Role, role_allows, verify_token
from livectl.errors import Forbidden, LivectlError, error_body
from livectl.kit.codec import JSONBytesResponse


def bearer_token(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return None


def authorize(principal: Principal, required: Role, room: str | None) -> Principal:
    if not role_allows(principal.role, required):
        raise Forbidden(f"the {principal.role} role may not do this")
    if room is not None and not principal.can_access(room):
        raise Forbidden(f"this token is not valid for room {room!r}")
    return principal


def require(required: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that authenticates the caller and checks role and room (if the path has one)."""

    async def dependency(request: Request) -> Principal:
        secret: str = request.app.state.resources.settings.jwt_secret
        principal = verify_token(secret, bearer_token(request.headers.get("authorization")))
        return authorize(principal, required, request.path_params.get("room"))

    return dependency


Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Controller = Annotated[Principal, Depends(require(Role.CONTROLLER))]
Assistant = Annotated[Principal, Depends(require(Role.ASSISTANT))]
Host = Annotated[Principal, Depends(require(Role.HOST))]
Player = Annotated[Principal, Depends(require(Role.PLAYER))]
Ingest = Annotated[Principal, Depends(require(Role.INGEST))]


async def authorize_socket(websocket: WebSocket, required: Role, room: str) -> Principal | None:
    """Check a socket before the upgrade; refuse it with the HTTP status and error body if not.

    Browsers cannot set headers on WebSocket URLs, so the token may come as ``?token=``.
    """
    secret: str = websocket.app.state.resources.settings.jwt_secret
    try:
        return authorize(verify_token(secret, socket_token(websocket)), required, room)
    except LivectlError as exc:
        await refuse_socket(websocket, exc)
        return None


def socket_token(websocket: WebSocket) -> str | None:
    return websocket.query_params.get("token") or bearer_token(
        websocket.headers.get("authorization")
    )


async def refuse_socket(websocket: WebSocket, exc: LivectlError) -> None:
    await websocket.send_denial_response(
        JSONBytesResponse(
            error_body(exc.code, exc.detail), status_code=exc.status, headers=exc.headers()
        )
    )
