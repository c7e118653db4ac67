"""A room's live numbers as pure functions: what one stream entry adds, and the figures a
console shows from the counters read back in one call."""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from livectl.ranking.rules import MentionMatcher

# Rates per minute are sums over the last minute of 1 s buckets.
WINDOW_S = 60
WINDOW_METRICS = ("comments", "likes", "orders", "gmv", "views")
# Per product, the funnel stages counted in the room's totals as "<stage>:<product id>".
FUNNEL_STAGES = ("exposure_ms", "mentions", "clicks", "carts", "orders", "quantity", "gmv")
# The figures viewers may see on the live channel.
VIEWER_SAFE = ("online", "likes")


@dataclass
class EntryEffect:
    """What one stream entry adds to a room's counters."""

    totals: Counter[str] = field(default_factory=Counter)
    window: Counter[str] = field(default_factory=Counter)
    viewers: set[str] = field(default_factory=set)
    new_viewers: set[str] = field(default_factory=set)
    fans: set[str] = field(default_factory=set)
    # ("p", user): present (entered or did anything); ("l", user): left. In order, with
    # repeats of the same user's state collapsed.
    presence: list[tuple[str, str]] = field(default_factory=list)

    def wire(self) -> dict[str, Any]:
        # Amounts as strings: Lua holds numbers as doubles, inexact past 2**53 and handed to
        # HINCRBY as 1e+17, which it refuses; a merged entry of large orders gets there.
        return {
            "t": {name: str(n) for name, n in self.totals.items()},
            "w": {name: str(n) for name, n in self.window.items()},
            "u": sorted(self.viewers),
            "n": sorted(self.new_viewers),
            "f": sorted(self.fans),
            "p": [part for step in self.presence for part in step],
        }


def _count(effect: EntryEffect, name: str, n: int) -> None:
    effect.totals[name] += n
    if name in WINDOW_METRICS:
        effect.window[name] += n


def entry_effect(
    events: Iterable[Mapping[str, Any]], matcher: MentionMatcher, products: Container[str]
) -> EntryEffect:
    effect = EntryEffect()
    last_state: dict[str, str] = {}
    for event in events:
        user = event["user"]
        user_id = user["id"]
        effect.viewers.add(user_id)
        if user.get("new"):
            effect.new_viewers.add(user_id)
        if user.get("fan"):
            effect.fans.add(user_id)
        state = "l" if event["type"] == "leave" else "p"
        if last_state.get(user_id) != state:
            last_state[user_id] = state
            effect.presence.append((state, user_id))
        _count_event(effect, event, matcher, products)
    return effect


def _count_event(
    effect: EntryEffect, event: Mapping[str, Any], matcher: MentionMatcher, products: Container[str]
) -> None:
    """Per-product figures only for the room's own products, so an ingest client naming
    made-up products cannot grow the room's counters without bound."""
    kind = event["type"]
    product_id = event.get("product_id")
    known = product_id in products
    if kind == "chat":
        _count(effect, "comments", 1)
        for mentioned in matcher.match(event["text"]).product_ids:
            effect.totals[f"mentions:{mentioned}"] += 1
    elif kind == "like":
        _count(effect, "likes", event.get("count") or 1)
    elif kind == "enter":
        _count(effect, "views", 1)
    elif kind in ("follow", "share"):
        _count(effect, f"{kind}s", 1)
    elif kind in ("click", "cart") and known:
        effect.totals[f"{kind}s:{product_id}"] += 1
    elif kind == "order":
        amount, quantity = event["order"]["amount"], event["order"]["quantity"]
        _count(effect, "orders", 1)
        _count(effect, "gmv", amount)
        effect.totals["items"] += quantity
        if known:
            effect.totals[f"orders:{product_id}"] += 1
            effect.totals[f"quantity:{product_id}"] += quantity
            effect.totals[f"gmv:{product_id}"] += amount


@dataclass(frozen=True, slots=True)
class Counters:
    """The room's counters as one read returns them."""

    totals: Mapping[str, int]
    window: Mapping[str, int]
    online: int
    uv: int
    new_viewers: int
    fans: int


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def funnel(totals: Mapping[str, int], product_ids: Sequence[str]) -> list[dict[str, Any]]:
    rows = []
    for product_id in product_ids:
        stage = {s: totals.get(f"{s}:{product_id}", 0) for s in FUNNEL_STAGES}
        exposure_min = stage["exposure_ms"] / 60_000
        rows.append(
            {
                "product_id": product_id,
                "exposure_s": stage["exposure_ms"] // 1000,
                "mentions": stage["mentions"],
                "clicks": stage["clicks"],
                "carts": stage["carts"],
                "orders": stage["orders"],
                "quantity": stage["quantity"],
                "gmv": stage["gmv"],
                "clicks_per_exposure_min": round(stage["clicks"] / exposure_min, 2)
                if exposure_min
                else 0.0,
                "cart_rate": _rate(stage["carts"], stage["clicks"]),
                "order_rate": _rate(stage["orders"], stage["carts"]),
                "click_to_order": _rate(stage["orders"], stage["clicks"]),
            }
        )
    return rows


def summarise(counters: Counters, product_ids: Sequence[str]) -> dict[str, Any]:
    """The ``stats`` message: exact totals, estimated viewers (HyperLogLog), rates per minute
    over the last minute, and the funnel per product."""
    totals, window = counters.totals, counters.window
    orders, gmv, views = totals.get("orders", 0), totals.get("gmv", 0), totals.get("views", 0)
    sessions = totals.get("sessions", 0)
    return {
        "online": counters.online,
        "uv": counters.uv,
        "views": views,
        "likes": totals.get("likes", 0),
        "comments": totals.get("comments", 0),
        "follows": totals.get("follows", 0),
        "shares": totals.get("shares", 0),
        "orders": orders,
        "items": totals.get("items", 0),
        "gmv": gmv,
        "aov": gmv // orders if orders else 0,
        # Money per 1,000 views (entries into the room), in the currency's smallest unit.
        "gpm": gmv * 1000 // views if views else 0,
        "conversion": _rate(orders, counters.uv),
        "new_viewer_share": _rate(counters.new_viewers, counters.uv),
        "fan_share": _rate(counters.fans, counters.uv),
        "avg_dwell_s": round(totals.get("dwell_ms", 0) / sessions / 1000, 1) if sessions else 0.0,
        **{f"{metric}_per_min": window.get(metric, 0) for metric in WINDOW_METRICS},
        "funnel": funnel(totals, product_ids),
    }


def viewer_safe(stats: Mapping[str, Any]) -> dict[str, Any]:
    return {name: stats[name] for name in VIEWER_SAFE}
