"""Cross-room and cross-role probes on every endpoint and socket, enumerated from the app.

ROLES is the access table of API.md: each route with the least role that may call it (None:
open to all). A route the app has and the table lacks fails the first test, so a new endpoint
cannot ship without its entry, and then the probes cover it: no token is 401, a token for
another room (even an admin's) is 403, every role below the least one is 403, and the least
one itself passes the access check."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIWebSocketRoute
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from livectl.app import create_app
from livectl.auth.tokens import Role, role_allows
from livectl.config import Settings
from tests.conftest import Stack, create_room

ROLES: dict[str, Role | None] = {
    "GET /healthz": None,
    "GET /readyz": None,
    "GET /metrics": None,
    "POST /v1/tokens": Role.ADMIN,
    "POST /v1/rooms": Role.CONTROLLER,
    "GET /v1/rooms": Role.HOST,
    "GET /v1/rooms/{room}": Role.HOST,
    "POST /v1/rooms/{room}/start": Role.CONTROLLER,
    "POST /v1/rooms/{room}/end": Role.CONTROLLER,
    "PUT /v1/rooms/{room}/products": Role.CONTROLLER,
    "GET /v1/rooms/{room}/products": Role.PLAYER,
    "POST /v1/rooms/{room}/products/{pid}/pin": Role.HOST,
    "DELETE /v1/rooms/{room}/products/{pid}/pin": Role.HOST,
    "POST /v1/rooms/{room}/products/{pid}/sold-out": Role.ASSISTANT,
    "POST /v1/rooms/{room}/events": Role.INGEST,
    "GET /v1/rooms/{room}/stats": Role.HOST,
    "GET /v1/rooms/{room}/stats/minutes": Role.HOST,
    "GET /v1/rooms/{room}/ranking": Role.PLAYER,
    "GET /v1/rooms/{room}/ranking/weights": Role.HOST,
    "PUT /v1/rooms/{room}/ranking/weights": Role.CONTROLLER,
    "POST /v1/rooms/{room}/coupon-templates": Role.CONTROLLER,
    "GET /v1/rooms/{room}/coupon-templates": Role.ASSISTANT,
    # Full terms need a controller; an assistant may drop from a template.
    "POST /v1/rooms/{room}/coupons": Role.ASSISTANT,
    "GET /v1/rooms/{room}/coupons": Role.PLAYER,
    "GET /v1/rooms/{room}/coupons/{coupon}": Role.PLAYER,
    "POST /v1/rooms/{room}/coupons/{coupon}/stop": Role.ASSISTANT,
    "POST /v1/rooms/{room}/coupons/{coupon}/claims": Role.PLAYER,
    "GET /v1/rooms/{room}/alerts": Role.HOST,
    "POST /v1/rooms/{room}/alerts/{alert_id}/ack": Role.ASSISTANT,
    "POST /v1/rooms/{room}/alerts/{alert_id}/resolve": Role.ASSISTANT,
    "GET /v1/rooms/{room}/watchlist": Role.ASSISTANT,
    "PUT /v1/rooms/{room}/watchlist": Role.CONTROLLER,
    "GET /v1/rooms/{room}/moderation": Role.ASSISTANT,
    "PUT /v1/rooms/{room}/moderation": Role.CONTROLLER,
    "POST /v1/rooms/{room}/mutes": Role.ASSISTANT,
    "DELETE /v1/rooms/{room}/mutes/{user_id}": Role.ASSISTANT,
    "POST /v1/rooms/{room}/messages/{event_id}/hide": Role.ASSISTANT,
    "GET /v1/rooms/{room}/moderation/actions": Role.ASSISTANT,
    "GET /v1/rooms/{room}/report": Role.HOST,
    "GET /v1/rooms/{room}/rules": Role.HOST,
    "PUT /v1/rooms/{room}/rules": Role.CONTROLLER,
    "GET /v1/rooms/{room}/rules/firings": Role.HOST,
    "POST /v1/rooms/{room}/giveaways": Role.CONTROLLER,
    "GET /v1/rooms/{room}/giveaways": Role.PLAYER,
    "GET /v1/rooms/{room}/giveaways/{giveaway}": Role.PLAYER,
    "POST /v1/rooms/{room}/giveaways/{giveaway}/close": Role.ASSISTANT,
    "GET /v1/rooms/{room}/giveaways/{giveaway}/audit": Role.PLAYER,
    "WS /v1/rooms/{room}/ingest": Role.INGEST,
    "WS /v1/rooms/{room}/console": Role.HOST,
    "WS /v1/rooms/{room}/live": Role.PLAYER,
    "WS /v1/rooms/{room}/claims": Role.PLAYER,
}

# Values for the other path parameters: well formed, whether or not they exist.
_PATH_VALUES = {
    "pid": "sku-1",
    "coupon": "probe",
    "alert_id": "1",
    "user_id": "u1",
    "giveaway": "probe",
}
_PARAM = re.compile(r"\{(\w+)\}")


def _socket_paths(routes: Iterable[Any]) -> Iterable[str]:
    for route in routes:
        if isinstance(route, APIWebSocketRoute):
            yield route.path
        # Included routers: FastAPI keeps them as branches holding the router's own routes.
        nested = getattr(getattr(route, "original_router", None), "routes", None)
        if nested is None:
            nested = getattr(route, "routes", [])
        yield from _socket_paths(nested)


def app_routes(app: FastAPI) -> set[str]:
    http = {
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    return http | {f"WS {path}" for path in _socket_paths(app.routes)}


def test_every_route_has_an_entry_in_the_access_table() -> None:
    routes = app_routes(create_app(Settings(secret="s" * 48)))
    missing = sorted(routes - ROLES.keys())
    assert not missing, (
        f"{missing} not in ROLES of tests/test_access_probes.py: add each with the least role "
        "that may call it (None if open to all), and the probes will cover it"
    )
    gone = sorted(ROLES.keys() - routes)
    assert not gone, f"ROLES names routes the app no longer has: {gone}"


def _roles_below(required: Role) -> list[Role]:
    return [role for role in Role if not role_allows(role, required)]


def _fill(path: str, room: str) -> str:
    return _PARAM.sub(lambda m: room if m[1] == "room" else _PATH_VALUES.get(m[1], "x"), path)


async def _http_status(client: httpx.AsyncClient, route: str, room: str, token: str | None) -> Any:
    method, path = route.split(" ", 1)
    response = await client.request(
        method,
        _fill(path, room),
        headers={"Authorization": f"Bearer {token}"} if token else {},
        json={} if method in ("POST", "PUT") else None,
    )
    error = response.json().get("error") if response.status_code >= 400 else None
    return response.status_code, error


async def _socket_status(stack: Stack, route: str, room: str, token: str | None) -> Any:
    url = f"{stack.ws_url}{_fill(route.split(' ', 1)[1], room)}"
    try:
        socket = await connect(f"{url}?token={token}" if token else url)
    except InvalidStatus as refused:
        return refused.response.status_code, None
    await socket.close()
    return 101, None


@pytest.fixture(scope="module")
async def probed_room(stack: Stack) -> AsyncIterator[str]:
    """One room for every probe: what an allowed call changes (even ending it) never turns
    another probe's answer into a 401 or 403."""
    async with httpx.AsyncClient(
        base_url=stack.base_url, headers=stack.headers(Role.ADMIN), timeout=10
    ) as admin:
        room = await create_room(admin)
        yield room
        await admin.post(f"/v1/rooms/{room}/end")


@pytest.mark.parametrize("route", sorted(ROLES))
async def test_access_is_held_to_role_and_room(route: str, stack: Stack, probed_room: str) -> None:
    room = probed_room
    other = f"{room}-other"
    required = ROLES[route]

    async def status(token: str | None, in_room: str = room) -> Any:
        if route.startswith("WS "):
            return await _socket_status(stack, route, in_room, token)
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
            return await _http_status(client, route, in_room, token)

    if required is None:
        assert (await status(None))[0] not in (401, 403)
        return
    assert (await status(None))[0] == 401
    assert (await status("not-a-token"))[0] == 401
    if "{room}" in route:
        # A token for one room gets 403 on another, whatever its role.
        assert (await status(stack.token(Role.ADMIN, [room]), other))[0] == 403
        assert (await status(stack.token(required, [room]), other))[0] == 403
    for role in _roles_below(required):
        assert (await status(stack.token(role, [room])))[0] == 403, role
    granted = await status(stack.token(required, [room]))
    assert granted[0] not in (401, 403) or granted[1] not in ("unauthorized", "forbidden"), granted


async def test_a_room_is_created_only_within_the_tokens_rooms(stack: Stack) -> None:
    # The one call whose room is in the body, not the path.
    async with httpx.AsyncClient(
        base_url=stack.base_url, headers=stack.headers(Role.CONTROLLER, ["room-a"])
    ) as controller:
        refused = await controller.post("/v1/rooms", json={"id": "room-b", "title": "别人的"})
    assert (refused.status_code, refused.json()["error"]) == (403, "forbidden")
