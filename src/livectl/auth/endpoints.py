from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from livectl.auth.dependencies import Admin
from livectl.auth.tokens import Role, issue_token
from livectl.resources import Deps

router = APIRouter(prefix="/v1/tokens", tags=["auth"])

_MAX_TTL_S = 30 * 86400

RoomOrAll = Annotated[str, Field(pattern=r"^(\*|[A-Za-z0-9_.:-]{1,64})$")]


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    sub: Annotated[str, Field(min_length=1, max_length=200)]
    role: Annotated[Role, Field(strict=False)]  # enums arrive as their JSON string
    rooms: Annotated[list[RoomOrAll], Field(min_length=1, max_length=100)]
    ttl_s: Annotated[int, Field(ge=60, le=_MAX_TTL_S)] = 12 * 3600


class TokenOut(BaseModel):
    token: str
    expires_at: int = Field(description="ms since the epoch")


@router.post("", status_code=201)
async def create_token(body: TokenRequest, _: Admin, deps: Deps) -> TokenOut:
    """Issue a token for a team member or an integration (admin only)."""
    token = issue_token(
        deps.settings.jwt_secret, sub=body.sub, role=body.role, rooms=body.rooms, ttl_s=body.ttl_s
    )
    return TokenOut(token=token, expires_at=(int(time.time()) + body.ttl_s) * 1000)
