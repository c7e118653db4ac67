"""Signed bearer tokens (JWT, HS256 pinned) and the role hierarchy of API.md."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import jwt

from livectl.errors import Unauthorized

ALGORITHM = "HS256"
ALL_ROOMS = "*"


class Role(StrEnum):
    ADMIN = "admin"
    CONTROLLER = "controller"
    ASSISTANT = "assistant"
    HOST = "host"
    PLAYER = "player"
    INGEST = "ingest"


# admin > controller > assistant > host > player; ingest stands apart (ingest and admin only).
_RANK = {Role.ADMIN: 4, Role.CONTROLLER: 3, Role.ASSISTANT: 2, Role.HOST: 1, Role.PLAYER: 0}


def role_allows(held: Role, required: Role) -> bool:
    if held is Role.ADMIN:
        return True
    if required is Role.INGEST or held is Role.INGEST:
        return held is required
    return _RANK[held] >= _RANK[required]


# The actor recorded for what livectl does by itself (automatic hides, alerts resolved after
# a quiet spell), where a person's token subject would be.
SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Principal:
    sub: str
    role: Role
    rooms: frozenset[str]

    def can_access(self, room: str) -> bool:
        # Even an admin token is held to the rooms it names: "a token for room A gets 403 on
        # room B" holds for every role, and `["*"]` is how a token covers every room.
        return ALL_ROOMS in self.rooms or room in self.rooms


def issue_token(secret: str, *, sub: str, role: Role, rooms: Iterable[str], ttl_s: int) -> str:
    now = int(time.time())
    claims = {"sub": sub, "role": role.value, "rooms": list(rooms), "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str | None) -> Principal:
    if not token:
        raise Unauthorized("a bearer token is required")
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "role"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("the token has expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("the token is not valid") from exc
    try:
        role = Role(claims["role"])
    except ValueError as exc:
        raise Unauthorized("the token names an unknown role") from exc
    rooms = claims.get("rooms", [])
    if not isinstance(rooms, list) or not all(isinstance(r, str) for r in rooms):
        raise Unauthorized("the token's rooms claim is malformed")
    return Principal(sub=str(claims["sub"]), role=role, rooms=frozenset(rooms))


def parse_ttl(text: str) -> int:
    """``90``, ``90s``, ``15m``, ``12h`` or ``7d`` as seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    multiplier = units.get(text[-1:], 0)
    number = text[:-1] if multiplier else text
    if not number.isdigit() or int(number) <= 0:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 12h, 7d)")
    return int(number) * (multiplier or 1)
