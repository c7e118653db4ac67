"""Rule evaluation, pure: ``evaluate(rules, state, observation) -> firings``.

Everything is in event time. An event fires the event triggers at its own instant; the room
clock steps whole seconds after the live's start and each step fires the schedules and, every
5 s, the window triggers over 5 s buckets counted from the events. So the same events give
the same firings at the same instants, live or replayed at any speed. Cool-downs and the
maximum number of firings are not judged here but where a firing is claimed (atomically,
see service.py), since two workers may evaluate one room around a lease hand-over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from livectl.kit.text import fold
from livectl.rules.schemas import (
    BUCKET_MS,
    ActiveWindow,
    ChatKeyword,
    CommentsRate,
    Condition,
    DropState,
    LikesPassed,
    NegativeShare,
    OnlineAbove,
    OrderPlaced,
    ProductSoldOut,
    Rule,
    RuleSetIn,
    Schedule,
    ViewerAction,
)

STEP_MS = 1_000


@dataclass(frozen=True, slots=True)
class Figures:
    """The live's running figures."""

    likes: int = 0
    online: int = 0


@dataclass(frozen=True, slots=True)
class Seen:
    """One event as the rules see it, with the figures just before and after it."""

    at_ms: int
    type: str
    key: str = ""  # the event's own key: events of one instant are each their own
    words: str = ""  # the folded chat text
    product_id: str | None = None
    before: Figures = Figures()
    after: Figures = Figures()


@dataclass(frozen=True, slots=True)
class Step:
    """A whole second of the room clock; buckets are indexed from the live's start."""

    at_ms: int
    comments: Mapping[int, int] = field(default_factory=dict)
    negative: Mapping[int, int] = field(default_factory=dict)
    figures: Figures = Figures()


@dataclass(frozen=True, slots=True)
class DropSeen:
    id: str
    template_id: str | None
    live: bool
    remaining: int


@dataclass(frozen=True, slots=True)
class Shop:
    """Product and coupon state, looked at on the tick."""

    at_ms: int
    sold_out: frozenset[str] = frozenset()
    drops: Sequence[DropSeen] = ()
    figures: Figures = Figures()


Observation = Seen | Step | Shop


@dataclass(frozen=True, slots=True)
class Firing:
    rule: Rule
    at_ms: int
    # What makes a firing one: its instant, or for a shop state the thing it is about, so a
    # sold-out product fires a rule once however many ticks see it sold out.
    instant: str
    reason: str


def evaluate(rules: RuleSetIn, started_ms: int, observation: Observation) -> list[Firing]:
    firings = []
    offset = observation.at_ms - started_ms
    figures = observation.after if isinstance(observation, Seen) else observation.figures
    for rule in rules.rules:
        if not rule.enabled or not _active(rule.active, offset):
            continue
        for instant, reason in _triggered(rule, started_ms, observation):
            if _conditions_hold(rule.conditions, figures):
                firings.append(Firing(rule, observation.at_ms, instant, reason))
    return firings


def by_event_type(rules: RuleSetIn) -> dict[str, RuleSetIn]:
    """Per event type, the rules an event of that type can fire: an event is then checked
    against those only, not the whole set (most rules watch the clock or one event type)."""
    watching: dict[str, list[Rule]] = {}
    for rule in rules.rules:
        event_type = _event_type(rule.trigger)
        if event_type is not None:
            watching.setdefault(event_type, []).append(rule)
    return {
        event_type: RuleSetIn.model_construct(dry_run=rules.dry_run, rules=subset)
        for event_type, subset in watching.items()
    }


def _event_type(trigger: object) -> str | None:
    match trigger:
        case ChatKeyword():
            return "chat"
        case OrderPlaced():
            return "order"
        case ViewerAction(event=event):
            return event
        case LikesPassed():
            return "like"
        case OnlineAbove():
            return "enter"
    return None


def bucket_of(at_ms: int, started_ms: int) -> int:
    return (at_ms - started_ms) // BUCKET_MS


def steps_between(after_ms: int, until_ms: int, started_ms: int) -> range:
    """The clock's whole seconds after ``after_ms`` up to ``until_ms``, counted from the start."""
    first = (
        started_ms + ((max(after_ms, started_ms - STEP_MS) - started_ms) // STEP_MS + 1) * STEP_MS
    )
    return range(first, until_ms + 1, STEP_MS)


def _active(active: ActiveWindow, offset_ms: int) -> bool:
    if offset_ms < active.from_s * 1000:
        return False
    return active.until_s is None or offset_ms < active.until_s * 1000


def _conditions_hold(conditions: Sequence[Condition], figures: Figures) -> bool:
    for condition in conditions:
        value = figures.likes if condition.metric == "likes" else figures.online
        if condition.above is not None and value <= condition.above:
            return False
        if condition.below is not None and value >= condition.below:
            return False
    return True


def _triggered(rule: Rule, started_ms: int, observation: Observation) -> list[tuple[str, str]]:
    """(instant, reason) for each way the rule's trigger fires on this observation."""
    trigger = rule.trigger
    instant = str(observation.at_ms)
    match observation:
        case Seen():
            reason = _event_reason(trigger, observation)
            return [] if reason is None else [(f"{instant}/{observation.key}", reason)]
        case Step():
            reason = _step_reason(trigger, started_ms, observation)
            return [] if reason is None else [(instant, reason)]
        case Shop():
            return _shop_reasons(trigger, observation)


def _event_reason(trigger: object, seen: Seen) -> str | None:
    match trigger:
        case ChatKeyword(keywords=keywords) if seen.type == "chat":
            for keyword in keywords:
                if _folded(keyword) in seen.words:
                    return f"chat {seen.words[:60]!r} matched keyword {keyword!r}"
        case OrderPlaced(product_id=wanted) if seen.type == "order":
            if wanted is None or wanted == seen.product_id:
                return f"order of {seen.product_id or 'a product'}"
        case ViewerAction(event=event) if seen.type == event:
            return f"a viewer's {event}"
        case LikesPassed(above=above) if seen.before.likes < above <= seen.after.likes:
            return f"likes passed {above} ({seen.after.likes})"
        case OnlineAbove(above=above) if seen.before.online <= above < seen.after.online:
            return f"online rose above {above} ({seen.after.online})"
    return None


def _step_reason(trigger: object, started_ms: int, step: Step) -> str | None:
    offset_s = (step.at_ms - started_ms) // 1000
    match trigger:
        case Schedule(every_s=int(every)) if offset_s > 0 and offset_s % every == 0:
            return f"every {every} s: {offset_s} s into the live"
        case Schedule(after_start_s=int(after)) if offset_s == after:
            return f"{after} s into the live"
        case CommentsRate() | NegativeShare() if offset_s % (BUCKET_MS // 1000) == 0:
            end = bucket_of(step.at_ms, started_ms)
            reason = _window_reason(trigger, step, end)
            # Edge-triggered: only when the condition starts to hold, not on every step.
            if reason is not None and _window_reason(trigger, step, end - 1) is None:
                return reason
    return None


def _window_reason(trigger: CommentsRate | NegativeShare, step: Step, end: int) -> str | None:
    """Whether the window ending before bucket ``end`` passes the trigger's threshold."""
    width = trigger.window_s * 1000 // BUCKET_MS
    if end - width < 0:
        return None  # the window reaches back before the live started
    comments = _total(step.comments, end - width, end)
    if isinstance(trigger, NegativeShare):
        share = _total(step.negative, end - width, end) / comments if comments else 0.0
        if comments < trigger.min_comments or share <= trigger.above:
            return None
        return f"negative share {share:.0%} of {comments} comments over {trigger.window_s} s"
    rate = comments * 60 / trigger.window_s
    if trigger.drop_pct is not None:
        return _drop_reason(trigger, trigger.drop_pct, step, end - width, rate)
    above, below = trigger.above_per_minute, trigger.below_per_minute
    if (above is not None and rate > above) or (below is not None and rate < below):
        return f"{rate:.1f} comments/min over {trigger.window_s} s"
    return None


def _drop_reason(
    trigger: CommentsRate, drop_pct: float, step: Step, start: int, rate: float
) -> str | None:
    """The rate against its average over the baseline just before the window (``start``)."""
    base_width = trigger.baseline_s * 1000 // BUCKET_MS
    if start - base_width < 0:
        return None
    baseline_rate = _total(step.comments, start - base_width, start) * 60 / trigger.baseline_s
    if baseline_rate < trigger.min_baseline_per_minute or baseline_rate == 0:
        return None
    if rate > baseline_rate * (1 - drop_pct / 100):
        return None
    return (
        f"{rate:.1f} comments/min over {trigger.window_s} s, {1 - rate / baseline_rate:.0%} "
        f"below their {trigger.baseline_s} s average of {baseline_rate:.1f}/min"
    )


def _shop_reasons(trigger: object, shop: Shop) -> list[tuple[str, str]]:
    match trigger:
        case ProductSoldOut(product_id=wanted):
            return [
                (f"sold_out:{product}", f"product {product} sold out")
                for product in sorted(shop.sold_out)
                if wanted is None or wanted == product
            ]
        case DropState(template_id=template, ended=ended, below_remaining=below):
            reasons = []
            for drop in shop.drops:
                if template is not None and drop.template_id != template:
                    continue
                if ended and not drop.live:
                    reasons.append((f"ended:{drop.id}", f"coupon drop {drop.id} ended"))
                elif below is not None and drop.live and drop.remaining < below:
                    reasons.append(
                        (f"low:{drop.id}", f"coupon drop {drop.id}: {drop.remaining} left")
                    )
            return reasons
    return []


def _total(buckets: Mapping[int, int], start: int, end: int) -> int:
    return sum(buckets.get(index, 0) for index in range(start, end))


@lru_cache(maxsize=4096)
def _folded(keyword: str) -> str:
    return fold(keyword)
