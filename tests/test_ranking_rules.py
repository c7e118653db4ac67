"""Ranking and live numbers as pure decisions, tested with plain values."""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from livectl.ranking.rules import (
    BUCKET_S,
    Counts,
    MentionMatcher,
    ProductSpec,
    count_buckets,
    entry_signals,
    rank,
)
from livectl.ranking.schemas import Weights
from livectl.stats.rules import Counters, EntryEffect, entry_effect, summarise
from livectl.stats.schemas import StatsOut

NOW_MS = 1_800_000_000_000
NOW_S = NOW_MS / 1000
BUCKET = NOW_MS // 1000 // BUCKET_S

PRODUCTS = [
    ProductSpec("sku-1", ("豆沙色口红", "1号链接", "口红"), stock=100),
    ProductSpec("sku-2", ("小黑瓶精华", "2号链接", "小黑瓶")),
    ProductSpec("sku-3", ("每日坚果", "3号链接", "坚果"), stock=5),
]
MATCHER = MentionMatcher(PRODUCTS)


def ranked(counts: dict[str, Counts], **options: Any) -> list[str]:
    result = rank(
        PRODUCTS,
        counts,
        options.pop("weights", Weights()),
        sold=options.pop("sold", {}),
        explained_at_ms=options.pop("explained_at_ms", {}),
        pinned=options.pop("pinned", None),
        now_ms=NOW_MS,
    )
    return [item.product_id for item in result.items]


def mentions(product_id: str, n: int, *, age_s: float = 0.0, signal: str = "mention") -> Counts:
    bucket = int((NOW_S - age_s) // BUCKET_S)
    return count_buckets([(bucket, product_id, signal, n)], NOW_S)[product_id]


def named(text: str, matcher: MentionMatcher = MATCHER) -> set[str]:
    """The products one chat names."""
    mentions, _ = matcher.tally([text])
    return set(mentions)


def with_intent(text: str) -> bool:
    _, intents = MATCHER.tally([text])
    return bool(intents)


def test_aliases_match_however_viewers_type_them() -> None:
    assert named("口 红还有吗") == {"sku-1"}
    assert named("小黑缾") == frozenset()  # a different character
    assert named("小黑瓶和坚果都要") == {"sku-2", "sku-3"}
    assert named("ＬＩＮＫ 2號鏈接") == {"sku-2"}  # traditional, full width


def test_a_number_or_latin_word_is_matched_whole_not_inside_a_longer_one() -> None:
    assert named("11号链接多少钱") == frozenset()
    assert named("要1号链接") == {"sku-1"}
    assert named("1号链接2号链接") == {"sku-1", "sku-2"}
    latin = MentionMatcher([ProductSpec("a", ("sku1",)), ProductSpec("b", ("sku12",))])
    assert named("sku12 还有吗", latin) == {"b"}
    assert named("买sku1", latin) == {"a"}


def test_a_name_two_products_share_names_both() -> None:
    lipsticks = MentionMatcher(
        [ProductSpec("316", ("口红", "豆沙色")), ProductSpec("520", ("口红", "正红色"))]
    )
    assert named("口红还有吗", lipsticks) == {"316", "520"}
    assert named("正红色口红", lipsticks) == {"316", "520"}
    assert named("要豆沙色", lipsticks) == {"316"}


def test_purchase_intent_counts_only_with_a_product_named() -> None:
    assert with_intent("小黑瓶多少钱")
    assert with_intent("小黑瓶 上 车")
    assert not with_intent("小黑瓶真好看")
    assert not with_intent("多少钱")


def signals_of(events: list[dict[str, Any]]) -> tuple[Counter[str], Counter[str]]:
    effect = entry_effect(events, MATCHER)
    return entry_signals(effect.totals, effect.intents)


def test_events_give_signals_for_their_product() -> None:
    chat = {"type": "chat", "text": "坚果想要", "user": {"id": "u"}}
    assert signals_of([chat]) == ({"sku-3:intent": 1, "sku-3:mention": 1}, {})
    cart = {"type": "cart", "product_id": "sku-1", "user": {"id": "u"}}
    assert signals_of([cart]) == ({"sku-1:cart": 1}, {})
    assert signals_of([{"type": "like", "count": 5, "user": {"id": "u"}}]) == ({}, {})


def test_an_entry_adds_signals_and_units_sold_for_the_room_products_only() -> None:
    events: list[dict[str, Any]] = [
        {"type": "chat", "text": "坚果想要", "user": {"id": "a"}},
        {"type": "chat", "text": "坚果", "user": {"id": "b"}},
        {"type": "click", "product_id": "sku-1", "user": {"id": "a"}},
        {"type": "click", "product_id": "made-up", "user": {"id": "a"}},
        {
            "type": "order",
            "product_id": "sku-1",
            "user": {"id": "a"},
            "order": {"id": "o", "quantity": 3, "amount": 1},
        },
    ]
    signals, sold = signals_of(events)
    assert signals == {
        "sku-3:mention": 2,
        "sku-3:intent": 1,
        "sku-1:click": 1,
        "sku-1:order": 1,
    }
    assert sold == {"sku-1": 3}


shopper_events = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["chat", "click", "cart", "order", "like"]),
        "user": st.just({"id": "a"}),
        "product_id": st.sampled_from(["sku-1", "sku-3", "made-up"]),
        "text": st.sampled_from(["口红", "1号链接多少钱", "坚果和口红都想要", "hello", "多少钱"]),
        "order": st.fixed_dictionaries(
            {"id": st.just("o"), "quantity": st.integers(1, 9), "amount": st.integers(0, 10**6)}
        ),
    }
)


@given(st.lists(shopper_events, max_size=40))
def test_entry_signals_are_each_event_signal_added_up(events: list[dict[str, Any]]) -> None:
    expected: Counter[str] = Counter()
    sold: Counter[str] = Counter()
    products = {p.id for p in PRODUCTS}
    for event in events:
        kind = event["type"]
        if kind == "chat":
            mentions, intents = MATCHER.tally([event["text"]])
            for product_id in mentions:
                expected[f"{product_id}:mention"] += 1
            for product_id in intents:
                expected[f"{product_id}:intent"] += 1
        elif kind in ("click", "cart", "order") and event["product_id"] in products:
            expected[f"{event['product_id']}:{kind}"] += 1
            if kind == "order":
                sold[event["product_id"]] += event["order"]["quantity"]
    assert signals_of(events) == (+expected, sold)


def test_signals_decay_and_split_by_minute() -> None:
    fresh = mentions("sku-1", 10)
    old = mentions("sku-1", 10, age_s=90)
    assert fresh.last_minute["mention"] == 10
    assert old.minute_before["mention"] == 10
    assert fresh.decayed["mention"] > 9
    assert 0 < old.decayed["mention"] < fresh.decayed["mention"] / 4
    assert count_buckets([(BUCKET - 100, "sku-1", "mention", 10)], NOW_S) == {}


def test_a_burst_of_mentions_goes_first_with_a_reason_that_says_so() -> None:
    result = rank(
        PRODUCTS,
        {"sku-3": mentions("sku-3", 200), "sku-1": mentions("sku-1", 20)},
        Weights(),
        sold={},
        explained_at_ms={},
        pinned=None,
        now_ms=NOW_MS,
    )
    assert [i.product_id for i in result.items] == ["sku-3", "sku-1", "sku-2"]
    assert "200 mentions in the last minute" in result.items[0].reasons
    assert result.recommended == "sku-3"


def test_sold_out_goes_to_the_bottom_whatever_its_signals() -> None:
    hot = {"sku-3": mentions("sku-3", 500)}
    sold_out = [ProductSpec("sku-3", ("坚果",), sold_out=True), *PRODUCTS[:2]]
    result = rank(sold_out, hot, Weights(), sold={}, explained_at_ms={}, pinned=None, now_ms=NOW_MS)
    assert result.items[-1].product_id == "sku-3"
    assert result.items[-1].reasons == ["sold out"]
    # Stock used up by orders counts the same as the flag.
    assert ranked(hot, sold={"sku-3": 5})[-1] == "sku-3"


def test_low_stock_is_a_reason() -> None:
    result = rank(
        PRODUCTS,
        {"sku-3": mentions("sku-3", 3)},
        Weights(),
        sold={"sku-3": 4},
        explained_at_ms={},
        pinned=None,
        now_ms=NOW_MS,
    )
    assert "only 1 left" in result.items[0].reasons


def test_ties_keep_the_room_order() -> None:
    counts = {"sku-1": mentions("sku-1", 30), "sku-2": mentions("sku-2", 30)}
    assert ranked(counts) == ["sku-1", "sku-2", "sku-3"]


def test_a_product_just_explained_yields_to_a_slightly_weaker_one() -> None:
    counts = {"sku-1": mentions("sku-1", 30), "sku-2": mentions("sku-2", 27)}
    assert ranked(counts)[:2] == ["sku-1", "sku-2"]
    just_explained = {"sku-1": NOW_MS - 30_000}
    assert ranked(counts, explained_at_ms=just_explained)[:2] == ["sku-2", "sku-1"]
    long_ago = {"sku-1": NOW_MS - 3_600_000}
    assert ranked(counts, explained_at_ms=long_ago)[:2] == ["sku-1", "sku-2"]


def test_a_pin_goes_first_and_the_recommendation_is_the_next_best() -> None:
    counts = {"sku-1": mentions("sku-1", 30)}
    result = rank(
        PRODUCTS, counts, Weights(), sold={}, explained_at_ms={}, pinned="sku-3", now_ms=NOW_MS
    )
    assert result.items[0].product_id == "sku-3"
    assert "pinned now" in result.items[0].reasons
    assert result.recommended == "sku-1"
    unweighted = Weights(pin=0)
    assert ranked(counts, pinned="sku-3", weights=unweighted)[0] == "sku-1"


def test_weights_decide_between_signals() -> None:
    counts = {"sku-1": mentions("sku-1", 10), "sku-2": mentions("sku-2", 3, signal="order")}
    assert ranked(counts)[0] == "sku-2"
    assert ranked(counts, weights=Weights(order=1))[0] == "sku-1"


def test_cart_rate_and_rising_mentions_are_explained() -> None:
    rows = [
        (BUCKET, "sku-1", "click", 50),
        (BUCKET, "sku-1", "cart", 6),
        (BUCKET, "sku-1", "mention", 40),
        (BUCKET - 80 // BUCKET_S, "sku-1", "mention", 10),
    ]
    result = rank(
        PRODUCTS,
        count_buckets(rows, NOW_S),
        Weights(),
        sold={},
        explained_at_ms={},
        pinned=None,
        now_ms=NOW_MS,
    )
    assert "cart rate 12%" in result.items[0].reasons
    assert "mentions rising (10 -> 40/min)" in result.items[0].reasons


@given(
    st.lists(st.integers(0, 1000), min_size=3, max_size=3),
    st.lists(st.booleans(), min_size=3, max_size=3),
)
def test_ranks_are_a_permutation_with_sold_out_last(
    volumes: list[int], sold_out: list[bool]
) -> None:
    products = [
        ProductSpec(p.id, p.names, stock=p.stock, sold_out=flag)
        for p, flag in zip(PRODUCTS, sold_out, strict=True)
    ]
    counts = {p.id: mentions(p.id, n) for p, n in zip(products, volumes, strict=True) if n}
    result = rank(
        products, counts, Weights(), sold={}, explained_at_ms={}, pinned=None, now_ms=NOW_MS
    )
    assert [i.rank for i in result.items] == [1, 2, 3]
    assert sorted(i.product_id for i in result.items) == ["sku-1", "sku-2", "sku-3"]
    flags = {p.id: p.sold_out for p in products}
    seen_sold_out = False
    for item in result.items:
        seen_sold_out = seen_sold_out or flags[item.product_id]
        assert flags[item.product_id] or not seen_sold_out
    assert result.recommended is None or not flags[result.recommended]


def user(user_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": user_id, **extra}


def viewers_of(effect: EntryEffect) -> set[str]:
    return {user for _, users in effect.presence for user in users}


def test_an_entry_effect_counts_exactly_what_was_sent() -> None:
    events: list[dict[str, Any]] = [
        {"type": "enter", "user": user("a", new=True)},
        {"type": "chat", "text": "口红链接", "user": user("a")},
        {"type": "like", "count": 7, "user": user("b", fan=True)},
        {"type": "like", "user": user("b")},
        {"type": "click", "product_id": "sku-1", "user": user("a")},
        {"type": "cart", "product_id": "sku-1", "user": user("a")},
        {
            "type": "order",
            "product_id": "sku-1",
            "order": {"id": "o1", "quantity": 2, "amount": 19800},
            "user": user("a"),
        },
        {"type": "leave", "user": user("a")},
        {"type": "follow", "user": user("b")},
        {"type": "share", "user": user("c")},
        {"type": "click", "product_id": "made-up", "user": user("c")},
    ]
    effect = entry_effect(events, MATCHER)
    assert effect.totals == {
        "views": 1,
        "comments": 1,
        "mentions:sku-1": 1,
        "likes": 8,
        "clicks:sku-1": 1,
        "carts:sku-1": 1,
        "orders": 1,
        "gmv": 19800,
        "items": 2,
        "orders:sku-1": 1,
        "quantity:sku-1": 2,
        "gmv:sku-1": 19800,
        "follows": 1,
        "shares": 1,
    }
    assert effect.window == {"views": 1, "comments": 1, "likes": 8, "orders": 1, "gmv": 19800}
    assert (viewers_of(effect), effect.new_viewers, effect.fans) == ({"a", "b", "c"}, {"a"}, {"b"})
    assert effect.presence == [("p", ["a", "b"]), ("l", ["a"]), ("p", ["c"])]


def test_the_summary_derives_rates_and_shares_from_counters() -> None:
    counters = Counters(
        totals={
            "orders": 4,
            "gmv": 40000,
            "views": 200,
            "dwell_ms": 90_000,
            "sessions": 3,
            "clicks:sku-1": 50,
            "carts:sku-1": 10,
            "orders:sku-1": 4,
            "exposure_ms:sku-1": 120_000,
        },
        window={"comments": 30, "orders": 2},
        online=12,
        uv=100,
        new_viewers=25,
        fans=10,
    )
    stats = summarise(counters, ["sku-1"])
    assert set(stats) == set(StatsOut.model_fields)  # the endpoint's schema says it all
    assert StatsOut.model_validate(stats).model_dump() == stats
    assert stats["aov"] == 10000
    assert stats["gpm"] == 200_000
    assert stats["conversion"] == 0.04
    assert (stats["new_viewer_share"], stats["fan_share"]) == (0.25, 0.1)
    assert stats["avg_dwell_s"] == 30.0
    assert (stats["comments_per_min"], stats["orders_per_min"], stats["likes_per_min"]) == (
        30,
        2,
        0,
    )
    (row,) = stats["funnel"]
    assert (row["clicks"], row["carts"], row["orders"], row["exposure_s"]) == (50, 10, 4, 120)
    assert (row["cart_rate"], row["order_rate"], row["click_to_order"]) == (0.2, 0.4, 0.08)
    assert row["clicks_per_exposure_min"] == 25.0


viewer_events = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["chat", "like", "enter", "leave", "follow", "share", "order"]),
        "user": st.fixed_dictionaries({"id": st.sampled_from(["a", "b", "c"])}),
        "count": st.integers(1, 100_000),
        "text": st.sampled_from(["口红", "hello", "坚果多少钱"]),
        "order": st.fixed_dictionaries(
            {"id": st.just("o"), "quantity": st.integers(1, 9), "amount": st.integers(0, 10**12)}
        ),
    }
)


@given(st.lists(viewer_events, max_size=60))
def test_entry_effects_add_up_to_the_events(events: list[dict[str, Any]]) -> None:
    effect = entry_effect(events, MATCHER)
    kinds = [e["type"] for e in events]
    orders = [e["order"] for e in events if e["type"] == "order"]
    assert effect.totals["comments"] == kinds.count("chat")
    assert effect.totals["likes"] == sum(e["count"] for e in events if e["type"] == "like")
    assert effect.totals["orders"] == len(orders)
    assert effect.totals["gmv"] == sum(o["amount"] for o in orders)
    assert effect.totals["items"] == sum(o["quantity"] for o in orders)
    assert effect.window["comments"] == effect.totals["comments"]
    assert viewers_of(effect) == {e["user"]["id"] for e in events}
    # Presence keeps each viewer's changes in order, never the same state twice in a row,
    # in runs of one state that name each viewer once.
    assert all(len(set(users)) == len(users) for _, users in effect.presence)
    assert all(a != b for (a, _), (b, _) in itertools.pairwise(effect.presence))
    for user in viewers_of(effect):
        states = [state for state, users in effect.presence if user in users]
        assert all(a != b for a, b in itertools.pairwise(states))
        last = next(e["type"] for e in reversed(events) if e["user"]["id"] == user)
        assert states[-1] == ("l" if last == "leave" else "p")
