"""Giveaway (福袋) wire models: the spec a controller or a rule sends, and what readers see."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from livectl.kit.text import fold

# Giveaway ids never hold ':' (the server makes them): a path id can never name another Redis
# key of the giveaway (``...:entrants``).
GIVEAWAY_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"

Audience = Literal["all", "new", "fans"]
# How a viewer enters: a chat containing the keyword, or a task (follow the room, share it,
# or comment anything).
EntryKind = Literal["keyword", "follow", "share", "comment"]
GiveawayState = Literal["open", "drawing", "drawn"]
CloseReason = Literal["time_up", "closed", "room_ended"]

MAX_WINNERS = 1000


class GiveawaySpec(BaseModel):
    """What a giveaway is: given by a controller over REST or by a rule's ``start_giveaway``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    title: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
    prize: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    winners: Annotated[int, Field(ge=1, le=MAX_WINNERS, description="how many winners to draw")]
    entry: EntryKind
    keyword: (
        Annotated[str, StringConstraints(min_length=1, max_length=50, strip_whitespace=True)] | None
    ) = Field(default=None, description="required for entry=keyword; matched in folded chat")
    audience: Audience = "all"
    duration_s: Annotated[int, Field(ge=5, le=6 * 3600)]

    @model_validator(mode="after")
    def _keyword_fits_entry(self) -> Self:
        if self.entry == "keyword":
            if self.keyword is None:
                raise ValueError("entry=keyword takes a keyword")
            if not fold(self.keyword):
                raise ValueError("the keyword has no letters or digits to match")
        elif self.keyword is not None:
            raise ValueError(f"entry={self.entry} takes no keyword")
        return self


class GiveawayOut(BaseModel):
    """The public part: what viewers' apps (player) see, and what the ``giveaway`` push says.
    ``seed`` and ``winner_ids`` stay null until the draw; ``commitment`` (sha256 of the seed)
    is there from the start."""

    id: str
    state: GiveawayState
    title: str
    prize: str
    winners: int
    entry: EntryKind
    keyword: str | None
    audience: Audience
    created_at: int
    ends_at: int
    entrants: int = Field(description="distinct users entered so far")
    commitment: str = Field(description="sha256 hex of the seed, published at creation")
    seed: str | None = Field(description="hex, published with the draw")
    winner_ids: list[str] | None
    drawn_at: int | None
    close_reason: CloseReason | None


class GiveawayDetail(GiveawayOut):
    """The staff view (host and up): who started it, and the rule firing if a rule did."""

    created_by: str
    key: str | None


class GiveawayAudit(BaseModel):
    """Everything needed to re-run the draw: ``giveaways.rules.verify`` takes exactly these."""

    id: str
    algorithm: str
    commitment: str
    seed: str
    winners: int
    entries: list[str] = Field(description="distinct user ids, sorted")
    entries_hash: str = Field(description="sha256 hex of the entries joined by newlines")
    winner_ids: list[str]
    drawn_at: int
