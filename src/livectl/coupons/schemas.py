from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from livectl.kit.ids import Identifier

# Controllers type these by hand: unknown fields are mistakes worth a 422, and a float for
# money is a 422, not a rounding.
_STRICT_INPUT = ConfigDict(extra="forbid", strict=True)

Money = Annotated[int, Field(ge=0, le=10**12)]
Audience = Literal["all", "new", "fans"]
CouponKind = Literal["amount_off", "percent_off"]
CouponState = Literal["live", "ended"]
EndReason = Literal["sold_out", "time_up", "stopped", "room_ended"]

# Drop ids never hold ':' (the server makes them): a claim's coupon id is refused with one, so
# it can never name another Redis key of the drop (``...:users``, ``...:keys``).
DROP_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
DropId = Annotated[str, StringConstraints(pattern=DROP_ID_PATTERN)]

MAX_QUANTITY = 1_000_000
MAX_CLAIMS_PER_FRAME = 1000


class DropTerms(BaseModel):
    """A drop's terms, as a controller saves them in a template or drops them directly."""

    model_config = _STRICT_INPUT

    title: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
    kind: CouponKind
    value: Annotated[int, Field(ge=1, le=10**12, description="money off, or percent off 1..99")]
    min_spend: Money = 0
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY)]
    per_user: Annotated[int, Field(ge=1, le=100)] = 1
    duration_s: Annotated[int, Field(ge=1, le=24 * 3600)]
    audience: Audience = "all"
    product_ids: Annotated[list[Identifier], Field(min_length=1, max_length=500)] | None = None
    valid_s: Annotated[
        int, Field(ge=60, le=30 * 24 * 3600, description="how long a claimed code stays valid")
    ] = 24 * 3600

    @model_validator(mode="after")
    def _sensible_discount(self) -> Self:
        if self.kind == "percent_off" and self.value > 99:
            raise ValueError("percent_off takes a value of 1..99")
        if self.kind == "amount_off" and self.min_spend and self.value > self.min_spend:
            raise ValueError("amount_off may not exceed min_spend")
        return self


class DropFromTemplate(BaseModel):
    model_config = _STRICT_INPUT

    template_id: Identifier


class TemplateOut(BaseModel):
    id: str
    terms: DropTerms
    created_at: int


class DropOut(BaseModel):
    id: str
    state: CouponState
    title: str
    kind: CouponKind
    value: int
    min_spend: int
    quantity: int
    per_user: int
    audience: Audience
    product_ids: list[str] | None
    remaining: int
    claimed: int
    ends_at: int
    end_reason: EndReason | None = None


class DropFigures(DropOut):
    """A drop with its results: what the coupon sold and what it cost."""

    redeemed: int
    gmv: int = Field(description="order amounts paid with this drop's codes")
    cost: int = Field(description="discounts given")
    roi: float | None = Field(description="gmv / cost; null before the first redemption")


class ClaimIn(BaseModel):
    model_config = _STRICT_INPUT

    user_id: Identifier
    idempotency_key: Identifier | None = None


class SocketClaim(ClaimIn):
    coupon_id: DropId


class ClaimOut(BaseModel):
    claim_id: str
    code: str
    expires_at: int
