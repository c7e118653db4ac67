"""Tokens and roles exactly as API.md: every endpoint and socket, every way to get it wrong."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from livectl.auth.tokens import ALGORITHM, Role, issue_token, parse_ttl, role_allows, verify_token
from livectl.errors import Unauthorized
from livectl.kit import codec
from tests.conftest import Stack, create_room

ROLES = list(Role)

# (method, path template, least role allowed); {room} is filled in, pid is sku-1.
ENDPOINTS = [
    ("GET", "/v1/rooms/{room}", Role.HOST),
    ("POST", "/v1/rooms/{room}/start", Role.CONTROLLER),
    ("POST", "/v1/rooms/{room}/end", Role.CONTROLLER),
    ("PUT", "/v1/rooms/{room}/products", Role.CONTROLLER),
    ("GET", "/v1/rooms/{room}/products", Role.PLAYER),
    ("POST", "/v1/rooms/{room}/products/sku-1/pin", Role.HOST),
    ("DELETE", "/v1/rooms/{room}/products/sku-1/pin", Role.HOST),
    ("POST", "/v1/rooms/{room}/products/sku-1/sold-out", Role.ASSISTANT),
    ("POST", "/v1/rooms/{room}/events", Role.INGEST),
]
SOCKETS = [("ingest", Role.INGEST), ("console", Role.HOST), ("live", Role.PLAYER)]


def test_role_nesting() -> None:
    assert role_allows(Role.ADMIN, Role.INGEST)
    assert role_allows(Role.CONTROLLER, Role.ASSISTANT)
    assert role_allows(Role.HOST, Role.PLAYER)
    assert not role_allows(Role.HOST, Role.ASSISTANT)
    assert not role_allows(Role.PLAYER, Role.HOST)
    assert not role_allows(Role.CONTROLLER, Role.INGEST)
    assert not role_allows(Role.INGEST, Role.PLAYER)
    assert role_allows(Role.INGEST, Role.INGEST)


def test_tokens_verify_and_refuse() -> None:
    secret = "s" * 48
    principal = verify_token(
        secret, issue_token(secret, sub="me", role=Role.HOST, rooms=["r1"], ttl_s=60)
    )
    assert (
        principal.sub,
        principal.role,
        principal.can_access("r1"),
        principal.can_access("r2"),
    ) == ("me", Role.HOST, True, False)
    expired = issue_token(secret, sub="me", role=Role.HOST, rooms=["r1"], ttl_s=-10)
    unsigned = jwt.encode(
        {"sub": "me", "role": "admin", "exp": time.time() + 60}, "", algorithm="none"
    )
    forged = issue_token("f" * 48, sub="me", role=Role.ADMIN, rooms=["*"], ttl_s=60)
    no_exp = jwt.encode({"sub": "me", "role": "admin", "rooms": ["*"]}, secret, algorithm=ALGORITHM)
    bad_role = jwt.encode(
        {"sub": "me", "role": "root", "exp": time.time() + 60}, secret, algorithm=ALGORITHM
    )
    for token in (expired, unsigned, forged, no_exp, bad_role, "garbage", "", None):
        with pytest.raises(Unauthorized):
            verify_token(secret, token)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("12h", 43200), ("7d", 604800)]
)
def test_ttl_parsing(text: str, seconds: int) -> None:
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-5m", "1.5h", "12x"])
def test_ttl_parsing_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_ttl(text)


async def test_every_endpoint_checks_token_role_and_room(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    room = await create_room(admin, start=False)
    other = await create_room(admin, start=False)
    expired = issue_token(stack.secret, sub="x", role=Role.ADMIN, rooms=["*"], ttl_s=-5)
    forged = issue_token("x" * 48, sub="x", role=Role.ADMIN, rooms=["*"], ttl_s=60)
    async with httpx.AsyncClient(base_url=stack.base_url) as client:
        for method, template, least in ENDPOINTS:
            path = template.format(room=room)
            for headers in (
                {},
                {"Authorization": "Bearer nonsense"},
                {"Authorization": f"Bearer {expired}"},
                {"Authorization": f"Bearer {forged}"},
                {"Authorization": "Basic abc"},
            ):
                answer = await client.request(method, path, headers=headers)
                assert answer.status_code == 401, (method, path, headers)
                assert answer.json()["error"] == "unauthorized"
            for role in ROLES:
                answer = await client.request(method, path, headers=stack.headers(role, [other]))
                assert answer.status_code == 403, (method, path, role)
                assert answer.json()["error"] == "forbidden"
                allowed = role_allows(role, least)
                answer = await client.request(method, path, headers=stack.headers(role, [room]))
                if allowed:
                    assert answer.status_code not in (401, 403), (method, path, role, answer.text)
                else:
                    assert answer.status_code == 403, (method, path, role)
                    assert answer.json() == {
                        "error": "forbidden",
                        "detail": answer.json()["detail"],
                    }


async def test_creating_rooms_and_tokens_needs_the_right_role(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base_url) as client:
        body = {"id": "r-auth-check", "title": "t"}
        assert (await client.post("/v1/rooms", json=body)).status_code == 401
        for role in (Role.ASSISTANT, Role.HOST, Role.PLAYER, Role.INGEST):
            assert (
                await client.post("/v1/rooms", json=body, headers=stack.headers(role))
            ).status_code == 403
        # A controller whose token covers other rooms cannot create this one.
        assert (
            await client.post("/v1/rooms", json=body, headers=stack.headers(Role.CONTROLLER, ["x"]))
        ).status_code == 403

        request = {"sub": "ops", "role": "host", "rooms": ["r1"], "ttl_s": 3600}
        for role in (Role.CONTROLLER, Role.HOST, Role.INGEST):
            answer = await client.post("/v1/tokens", json=request, headers=stack.headers(role))
            assert answer.status_code == 403
        issued = await client.post("/v1/tokens", json=request, headers=stack.headers(Role.ADMIN))
        assert issued.status_code == 201
        principal = verify_token(stack.secret, issued.json()["token"])
        assert (principal.role, principal.rooms) == (Role.HOST, frozenset({"r1"}))
        for bad in (
            {**request, "role": "root"},
            {**request, "ttl_s": 1.5},
            {**request, "rooms": ["a b"]},
            {**request, "extra": 1},
            {**request, "ttl_s": 10**9},
        ):
            answer = await client.post("/v1/tokens", json=bad, headers=stack.headers(Role.ADMIN))
            assert answer.status_code == 422, bad
            assert answer.json()["error"] == "validation_error"


async def _refusal(url: str) -> tuple[int, dict[str, str]]:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url):
            pass
    response = refused.value.response
    return response.status_code, codec.loads(response.body or b"{}")


async def test_every_socket_is_refused_before_the_upgrade(
    stack: Stack, admin: httpx.AsyncClient
) -> None:
    room = await create_room(admin)
    other = await create_room(admin)
    for channel, least in SOCKETS:
        base = f"{stack.ws_url}/v1/rooms/{room}/{channel}"
        assert await _refusal(base) == (
            401,
            {"error": "unauthorized", "detail": "a bearer token is required"},
        )
        status, body = await _refusal(f"{base}?token=forged.token.here")
        assert (status, body["error"]) == (401, "unauthorized")
        for role in ROLES:
            status, body = await _refusal(f"{base}?token={stack.token(role, [other])}")
            assert (status, body["error"]) == (403, "forbidden")
            if not role_allows(role, least):
                status, body = await _refusal(f"{base}?token={stack.token(role, [room])}")
                assert (status, body["error"]) == (403, "forbidden")
    console = f"{stack.ws_url}/v1/rooms/{room}/console?token={stack.token(Role.HOST, [room])}"
    status, body = await _refusal(f"{console}&since=-1")
    assert (status, body["error"]) == (422, "validation_error")
    status, body = await _refusal(
        f"{stack.ws_url}/v1/rooms/bad%20room/console?token={stack.token(Role.ADMIN)}"
    )
    assert (status, body["error"]) == (422, "validation_error")
    missing = f"{stack.ws_url}/v1/rooms/no-such-room/console?token={stack.token(Role.ADMIN)}"
    assert (await _refusal(missing))[0] == 404
