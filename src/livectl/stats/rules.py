"""A room's live numbers as pure functions: what one stream entry adds, and the figures a
console shows from the counters read back in one call."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
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
    new_viewers: set[str] = field(default_factory=set)
    fans: set[str] = field(default_factory=set)
    # Who was there, in runs of one state: ("p", users) present (entered or did anything),
    # ("l", users) left. In order, with repeats of a user's state collapsed, so a run names
    # each user once. Every viewer is in it, and most entries are a single run of "p".
    presence: list[tuple[str, list[str]]] = field(default_factory=list)
    # Per product, chats naming it with purchase intent (for ranking; not a figure of its own).
    intents: Counter[str] = field(default_factory=Counter)

    def wire(self) -> dict[str, Any]:
        # Amounts as strings: Lua holds numbers as doubles, inexact past 2**53 and handed to
        # HINCRBY as 1e+17, which it refuses; a merged entry of large orders gets there.
        return {
            "t": {name: str(n) for name, n in self.totals.items()},
            "w": {name: str(n) for name, n in self.window.items()},
            "n": list(self.new_viewers),
            "f": list(self.fans),
            "p": [part for run in self.presence for part in run],
        }


def entry_effect(events: Sequence[Mapping[str, Any]], matcher: MentionMatcher) -> EntryEffect:
    """Per-product figures only for the room's own products (the matcher's), so an ingest
    client naming made-up products cannot grow the room's counters without bound.

    This runs for every event a room gets: what can be is done by C loops (``map``,
    ``Counter``, ``dict.fromkeys``), the plain figures are summed in locals, and the helpers
    loop over the events themselves, as per-event calls were most of its cost."""
    effect = EntryEffect()
    kinds = Counter(map(_TYPE, events))
    _note_viewers(effect, events, kinds["leave"] > 0)
    _count_events(effect, events, kinds, matcher)
    return effect


_TYPE = itemgetter("type")
_USER = itemgetter("user")
_ID = itemgetter("id")


def _note_viewers(
    effect: EntryEffect, events: Sequence[Mapping[str, Any]], anyone_left: bool
) -> None:
    users = list(map(_USER, events))
    user_ids = list(map(_ID, users))
    effect.new_viewers.update([user["id"] for user in users if user.get("new")])
    effect.fans.update([user["id"] for user in users if user.get("fan")])
    if not anyone_left:
        # Everyone is present: once each, in the order they were first seen.
        effect.presence.append(("p", list(dict.fromkeys(user_ids))))
        return
    last_state: dict[str, str] = {}
    run: list[str] = []
    for event, user_id in zip(events, user_ids, strict=True):
        state = "l" if event["type"] == "leave" else "p"
        if last_state.get(user_id) == state:
            continue
        last_state[user_id] = state
        if not effect.presence or effect.presence[-1][0] != state:
            run = []
            effect.presence.append((state, run))
        run.append(user_id)


def _count_events(
    effect: EntryEffect,
    events: Sequence[Mapping[str, Any]],
    kinds: Counter[str],
    matcher: MentionMatcher,
) -> None:
    products = matcher.product_ids
    totals = effect.totals
    texts: list[str] = []
    likes = gmv = items = 0
    for event in events:
        kind = event["type"]
        if kind == "chat":
            texts.append(event["text"])
        elif kind == "like":
            likes += event.get("count") or 1
        elif kind == "order":
            amount, quantity = event["order"]["amount"], event["order"]["quantity"]
            gmv += amount
            items += quantity
            if (product_id := event.get("product_id")) in products:
                totals[f"orders:{product_id}"] += 1
                totals[f"quantity:{product_id}"] += quantity
                totals[f"gmv:{product_id}"] += amount
        elif kind in ("click", "cart") and (product_id := event.get("product_id")) in products:
            totals[f"{kind}s:{product_id}"] += 1
    mentions, effect.intents = matcher.tally(texts)
    for mentioned, n in mentions.items():
        totals[f"mentions:{mentioned}"] += n
    for name, n in (
        ("comments", kinds["chat"]),
        ("likes", likes),
        ("views", kinds["enter"]),
        ("follows", kinds["follow"]),
        ("shares", kinds["share"]),
        ("orders", kinds["order"]),
        ("gmv", gmv),
        ("items", items),
    ):
        if n:
            totals[name] += n
            if name in WINDOW_METRICS:
                effect.window[name] += n


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
