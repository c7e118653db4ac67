from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from livectl.kit.ids import Identifier

# Controllers type these by hand: unknown fields are mistakes worth a 422, and a float for
# money is a 422, not a rounding.
_STRICT_INPUT = ConfigDict(extra="forbid", strict=True)

Title = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
RoomStatus = Literal["created", "live", "ended"]


class RoomCreate(BaseModel):
    model_config = _STRICT_INPUT

    id: Identifier
    title: Title
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"


class ProductIn(BaseModel):
    model_config = _STRICT_INPUT

    id: Identifier
    name: Title
    aliases: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=64)]], Field(max_length=50)
    ] = []
    price: Annotated[int, Field(ge=0, le=10**12, description="in the currency's smallest unit")]
    stock: Annotated[int, Field(ge=0, le=10**9)] | None = None


class ProductOut(BaseModel):
    id: str
    name: str
    aliases: list[str]
    price: int
    stock: int | None
    sold_out: bool
    rank: int
    score: float = 0.0
    reasons: list[str] = []


class RoomOut(BaseModel):
    id: str
    title: str
    currency: str
    status: RoomStatus
    created_at: int
    started_at: int | None
    ended_at: int | None
    pinned_product_id: str | None = None
    product_count: int = 0


class PinOut(BaseModel):
    product_id: str | None
