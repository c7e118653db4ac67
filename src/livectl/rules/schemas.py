"""A room's rule set on the wire: strict models (unknown fields, impossible windows and bad
thresholds are errors), and what the endpoints answer."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from livectl.giveaways.schemas import GiveawaySpec
from livectl.kit.ids import Identifier
from livectl.kit.text import fold
from livectl.opinion.bursts import Level

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)

# Metric windows are counted in 5 s buckets of event time and kept for an hour.
BUCKET_MS = 5_000
MAX_WINDOW_S = 3_600
MAX_RULES = 100

Keyword = Annotated[str, StringConstraints(min_length=1, max_length=50)]
WindowSeconds = Annotated[int, Field(ge=5, le=MAX_WINDOW_S, multiple_of=5)]
Threshold = Annotated[int, Field(ge=1, le=10**12)]
Seconds = Annotated[int, Field(ge=0, le=7 * 86_400)]


class ChatKeyword(BaseModel):
    """A chat whose folded text contains one of the keywords."""

    model_config = _STRICT
    kind: Literal["chat_keyword"]
    keywords: Annotated[list[Keyword], Field(min_length=1, max_length=20)]

    @model_validator(mode="after")
    def _keywords_fold_to_something(self) -> Self:
        if any(not fold(keyword).strip() for keyword in self.keywords):
            raise ValueError("a keyword folds to nothing (only spaces or repeats)")
        return self


class OrderPlaced(BaseModel):
    """An order, of one product if ``product_id`` is given."""

    model_config = _STRICT
    kind: Literal["order"]
    product_id: Identifier | None = None


class ViewerAction(BaseModel):
    model_config = _STRICT
    kind: Literal["viewer"]
    event: Literal["follow", "share", "enter", "click", "cart"]


class LikesPassed(BaseModel):
    """The live's likes reach ``above`` (fires on the like that crosses it)."""

    model_config = _STRICT
    kind: Literal["likes"]
    above: Threshold


class OnlineAbove(BaseModel):
    """Viewers in the room (enters minus leaves) rise above ``above``."""

    model_config = _STRICT
    kind: Literal["online"]
    above: Threshold


class CommentsRate(BaseModel):
    """Comments per minute over ``window_s``: above or below a figure, or ``drop_pct`` below
    their average over the ``baseline_s`` before the window."""

    model_config = _STRICT
    kind: Literal["comments_rate"]
    window_s: WindowSeconds = 60
    above_per_minute: Annotated[float, Field(gt=0, le=1e6)] | None = None
    below_per_minute: Annotated[float, Field(gt=0, le=1e6)] | None = None
    drop_pct: Annotated[float, Field(gt=0, lt=100)] | None = None
    baseline_s: WindowSeconds = 300
    min_baseline_per_minute: Annotated[float, Field(ge=0, le=1e6)] = 5

    @model_validator(mode="after")
    def _one_threshold(self) -> Self:
        given = [self.above_per_minute, self.below_per_minute, self.drop_pct]
        if sum(value is not None for value in given) != 1:
            raise ValueError("give exactly one of above_per_minute, below_per_minute, drop_pct")
        if self.drop_pct is not None and self.baseline_s <= self.window_s:
            raise ValueError("baseline_s must be longer than window_s")
        if self.window_s + (self.baseline_s if self.drop_pct is not None else 0) > MAX_WINDOW_S:
            raise ValueError(f"window_s plus baseline_s may span at most {MAX_WINDOW_S} s")
        return self


class NegativeShare(BaseModel):
    """The share of negative comments over ``window_s`` rises above ``above``."""

    model_config = _STRICT
    kind: Literal["negative_share"]
    window_s: WindowSeconds = 60
    above: Annotated[float, Field(gt=0, lt=1)]
    min_comments: Annotated[int, Field(ge=1, le=100_000)] = 10


class Schedule(BaseModel):
    """Every ``every_s`` after the live starts, or once ``after_start_s`` into it."""

    model_config = _STRICT
    kind: Literal["schedule"]
    every_s: Annotated[int, Field(ge=5, le=86_400)] | None = None
    after_start_s: Seconds | None = None

    @model_validator(mode="after")
    def _one_timing(self) -> Self:
        if (self.every_s is None) == (self.after_start_s is None):
            raise ValueError("give exactly one of every_s, after_start_s")
        return self


class ProductSoldOut(BaseModel):
    """A product (any, or ``product_id``) is sold out."""

    model_config = _STRICT
    kind: Literal["sold_out"]
    product_id: Identifier | None = None


class DropState(BaseModel):
    """A coupon drop (from any template, or ``template_id``) ended, or has fewer than
    ``below_remaining`` left."""

    model_config = _STRICT
    kind: Literal["coupon"]
    template_id: Identifier | None = None
    ended: bool = False
    below_remaining: Annotated[int, Field(ge=1, le=10**9)] | None = None

    @model_validator(mode="after")
    def _one_state(self) -> Self:
        if self.ended == (self.below_remaining is not None):
            raise ValueError("give exactly one of ended: true, below_remaining")
        return self


Trigger = Annotated[
    ChatKeyword
    | OrderPlaced
    | ViewerAction
    | LikesPassed
    | OnlineAbove
    | CommentsRate
    | NegativeShare
    | Schedule
    | ProductSoldOut
    | DropState,
    Field(discriminator="kind"),
]
EVENT_TRIGGERS = (ChatKeyword, OrderPlaced, ViewerAction, LikesPassed, OnlineAbove)
WINDOW_TRIGGERS = (CommentsRate, NegativeShare, Schedule)
STATE_TRIGGERS = (ProductSoldOut, DropState)


class Condition(BaseModel):
    """Checked when the trigger fires: a running figure of the live above or below a value."""

    model_config = _STRICT
    metric: Literal["online", "likes"]
    above: Annotated[int, Field(ge=0)] | None = None
    below: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _a_bound(self) -> Self:
        if self.above is None and self.below is None:
            raise ValueError("give above, below or both")
        if self.above is not None and self.below is not None and self.above + 1 >= self.below:
            raise ValueError("no value is above `above` and below `below`")
        return self


class ActiveWindow(BaseModel):
    """When in the live (seconds after it starts) the rule may fire."""

    model_config = _STRICT
    from_s: Seconds = 0
    until_s: Seconds | None = None

    @model_validator(mode="after")
    def _possible(self) -> Self:
        if self.until_s is not None and self.until_s <= self.from_s:
            raise ValueError("until_s must be after from_s")
        return self


class DropCoupon(BaseModel):
    model_config = _STRICT
    kind: Literal["drop_coupon"]
    template_id: Identifier


class PinProduct(BaseModel):
    model_config = _STRICT
    kind: Literal["pin_product"]
    product_id: Identifier


class Announce(BaseModel):
    """An ``announcement`` message on the live channel and the consoles."""

    model_config = _STRICT
    kind: Literal["announce"]
    text: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class RaiseAlert(BaseModel):
    model_config = _STRICT
    kind: Literal["alert"]
    level: Level = "warning"
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class StartGiveaway(BaseModel):
    """Start a giveaway (福袋) on these terms; one per firing however often it is retried."""

    model_config = _STRICT
    kind: Literal["start_giveaway"]
    giveaway: GiveawaySpec


Action = Annotated[
    DropCoupon | PinProduct | Announce | RaiseAlert | StartGiveaway, Field(discriminator="kind")
]


class Rule(BaseModel):
    model_config = _STRICT
    id: Identifier
    name: Annotated[str, StringConstraints(max_length=100)] = ""
    enabled: bool = True
    dry_run: bool = False
    trigger: Trigger
    conditions: Annotated[list[Condition], Field(max_length=10)] = []
    active: ActiveWindow = ActiveWindow()
    actions: Annotated[list[Action], Field(min_length=1, max_length=10)]
    cooldown_s: Seconds = 0
    max_firings: Annotated[int, Field(ge=1, le=100_000)] | None = None


class RuleSetIn(BaseModel):
    """A room's rules; ``dry_run`` here makes every rule only report what it would do."""

    model_config = _STRICT
    dry_run: bool = False
    rules: Annotated[list[Rule], Field(max_length=MAX_RULES)]

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule id {rule.id!r} is used twice")
            seen.add(rule.id)
        return self


class RuleSetOut(RuleSetIn):
    version: int = Field(description="0 until the room's first PUT")
    set_by: str | None
    set_at: int | None


class FiringOut(BaseModel):
    id: str
    rule_id: str
    version: int
    at: int = Field(description="the trigger instant, ms, in event time")
    offset_ms: int | None = Field(description="ms after the live started")
    reason: str
    actions: list[dict[str, Any]]
    dry_run: bool
    status: Literal["pending", "done", "dry_run"]
    results: list[dict[str, Any]]
