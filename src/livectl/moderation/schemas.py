from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from livectl.kit.ids import Identifier
from livectl.opinion.schemas import Keyword


class ModerationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    blocked_words: Annotated[list[Keyword], Field(max_length=500)]
    slow_mode_s: Annotated[int, Field(ge=0, le=3600, strict=True)] = 0


class ModerationOut(BaseModel):
    blocked_words: list[str]
    default_blocked_words: list[str]
    slow_mode_s: int


class MuteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: Identifier
    seconds: Annotated[int, Field(ge=1, le=7 * 24 * 3600, strict=True)]


class MuteOut(BaseModel):
    user_id: str
    until: int


class ActionOut(BaseModel):
    action: str
    target: str | None
    detail: dict[str, Any]
    actor: str
    at: int
