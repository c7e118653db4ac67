from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from livectl.kit.text import fold
from livectl.opinion.bursts import ANY_CATEGORY, NEGATIVE, Level
from livectl.opinion.rules import AlertStatus


def _has_words(word: str) -> str:
    if not fold(word):
        raise ValueError("a word needs letters or digits (symbols and spaces are ignored)")
    return word


# A keyword or blocked word: matched folded, so it must fold to something.
Keyword = Annotated[str, StringConstraints(min_length=1, max_length=32), AfterValidator(_has_words)]


def _not_reserved(category: str) -> str:
    if category in (NEGATIVE, ANY_CATEGORY):
        raise ValueError(f"{category!r} names a signal of its own; choose another name")
    return category


Category = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$"), AfterValidator(_not_reserved)
]


class AlertOut(BaseModel):
    id: str
    level: Level
    kind: str
    title: str
    samples: list[dict[str, Any]]
    figures: dict[str, Any]
    status: AlertStatus
    created_at: int
    acked_by: str | None = None
    acked_at: int | None = None
    resolved_by: str | None = None
    resolved_at: int | None = None


AlertFilter = Literal["open", "acked", "resolved", "active", "all"]


class WatchlistIn(BaseModel):
    """The room's watchlist: category -> keywords (replaces the default list for the room)."""

    model_config = ConfigDict(extra="forbid")

    categories: Annotated[
        dict[Category, Annotated[list[Keyword], Field(max_length=200)]],
        Field(max_length=20, examples=[{"refund": ["退款", "退货"], "counterfeit": ["假货"]}]),
    ]


class WatchlistOut(BaseModel):
    categories: dict[str, list[str]]
    default: bool
