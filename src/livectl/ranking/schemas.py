from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

# Controllers type these by hand: unknown fields are mistakes worth a 422.
_STRICT_INPUT = ConfigDict(extra="forbid", strict=True, frozen=True)

Weight = Annotated[float, Field(ge=0, le=1000, allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class Weights(BaseModel):
    """How much each signal counts in a room's product order (points per decayed event)."""

    model_config = _STRICT_INPUT

    mention: Weight = 1.0
    intent: Weight = 3.0
    click: Weight = 2.0
    cart: Weight = 5.0
    order: Weight = 10.0
    velocity: Weight = 0.5
    pin: Weight = 100.0
    # Up to this share of its score comes off a product just explained, fading with time.
    fatigue: Share = 0.5
    # Up to this share of its score is added to a product running low on stock.
    scarcity: Share = 0.2


class RankingItem(BaseModel):
    product_id: str
    rank: int
    score: float
    reasons: list[str]


class RankingOut(BaseModel):
    items: list[RankingItem]
    recommended: str | None
