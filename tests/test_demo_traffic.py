"""The demo traffic model on its own: no server, simulated time only."""

from __future__ import annotations

import math
import re
from collections import Counter

import pytest

from livectl.demo.catalog import DEMO_ROOM
from livectl.demo.traffic import (
    BANTER,
    COMPLAINT_KEYWORDS,
    COMPLAINT_TEMPLATES,
    GREETINGS,
    INTENT_TEMPLATES,
    MILD_NEGATIVES,
    ORDERED_TEMPLATES,
    PRAISE,
    PRODUCT_QUESTION_TEMPLATES,
    QUESTIONS,
    Event,
    TrafficModel,
)
from livectl.kit.ids import ID_PATTERN

START_MS = 1_795_400_000_000
WINDOW_MS = 100
MINUTE_MS = 60_000
EVENT_TYPES = {"chat", "like", "order", "enter", "leave", "follow", "share", "click", "cart"}
FIELDS_BY_TYPE = {
    "chat": {"text"},
    "like": {"count"},
    "click": {"product_id"},
    "cart": {"product_id"},
    "order": {"product_id", "order"},
}
COMMON_FIELDS = {"id", "type", "ts", "user"}
PRICES = {product.id: product.price for product in DEMO_ROOM.products}
IDENTIFIER = re.compile(ID_PATTERN)
CJK = re.compile(r"[\u4e00-\u9fff]")


def simulate(model: TrafficModel, minutes: float, *, window_ms: int = WINDOW_MS) -> list[Event]:
    events: list[Event] = []
    for window in range(round(minutes * MINUTE_MS / window_ms)):
        events.extend(model.next_batch(START_MS + window * window_ms, window_ms))
    return events


def user_of(event: Event) -> dict[str, object]:
    user = event["user"]
    assert isinstance(user, dict)
    return user


def user_id(event: Event) -> str:
    value = user_of(event)["id"]
    assert isinstance(value, str)
    return value


def ts_of(event: Event) -> int:
    ts = event["ts"]
    assert type(ts) is int
    return ts


def text_of(event: Event) -> str:
    text = event["text"]
    assert isinstance(text, str)
    return text


def is_complaint(event: Event) -> bool:
    return event["type"] == "chat" and any(word in text_of(event) for word in COMPLAINT_KEYWORDS)


def is_int(value: object) -> bool:
    return type(value) is int  # bool is an int subclass, and the API wants neither bool nor float


@pytest.fixture(scope="module")
def ten_minutes() -> list[Event]:
    model = TrafficModel(DEMO_ROOM.products, seed=42, complaint_burst_interval_s=60)
    return simulate(model, 10)


def test_the_same_seed_gives_the_same_events() -> None:
    first = simulate(TrafficModel(DEMO_ROOM.products, seed=7), 2)
    second = simulate(TrafficModel(DEMO_ROOM.products, seed=7), 2)
    other = simulate(TrafficModel(DEMO_ROOM.products, seed=8), 2)
    assert first == second
    assert first != other


def test_a_run_id_changes_the_ids_but_not_the_traffic() -> None:
    plain = simulate(TrafficModel(DEMO_ROOM.products, seed=7), 1)
    rerun = simulate(TrafficModel(DEMO_ROOM.products, seed=7, run_id="second"), 1)
    assert {str(event["id"]) for event in plain}.isdisjoint(str(event["id"]) for event in rerun)

    def without_ids(events: list[Event]) -> list[Event]:
        return [{**event, "id": None, "order": None} for event in events]

    assert without_ids(plain) == without_ids(rerun)


def test_every_event_follows_the_api_rules(ten_minutes: list[Event]) -> None:
    assert ten_minutes
    for event in ten_minutes:
        kind = event["type"]
        assert kind in EVENT_TYPES
        assert set(event) == COMMON_FIELDS | FIELDS_BY_TYPE.get(str(kind), set()), event
        assert isinstance(event["id"], str)
        assert IDENTIFIER.fullmatch(event["id"])
        assert is_int(event["ts"])
        user = user_of(event)
        assert set(user) <= {"id", "name", "new", "fan", "level"}
        assert IDENTIFIER.fullmatch(user_id(event))
        assert isinstance(user["name"], str)
        assert CJK.search(user["name"])
        assert isinstance(user["new"], bool)
        assert isinstance(user["fan"], bool)
        assert is_int(user["level"])
        if kind == "chat":
            assert 1 <= len(text_of(event)) <= 500
        if kind == "like":
            count = event["count"]
            assert is_int(count)
            assert isinstance(count, int)
            assert 1 <= count <= 100_000
        if kind in {"click", "cart", "order"}:
            assert event["product_id"] in PRICES
        if kind == "order":
            order = event["order"]
            assert isinstance(order, dict)
            assert set(order) == {"id", "quantity", "amount"}
            assert isinstance(order["id"], str)
            assert IDENTIFIER.fullmatch(order["id"])
            assert is_int(order["quantity"])
            assert is_int(order["amount"])
            assert order["quantity"] >= 1
            assert order["amount"] == PRICES[str(event["product_id"])] * order["quantity"]


def test_ids_are_unique(ten_minutes: list[Event]) -> None:
    event_ids = [event["id"] for event in ten_minutes]
    assert len(set(event_ids)) == len(event_ids)
    orders = [event["order"] for event in ten_minutes if event["type"] == "order"]
    order_ids = [order["id"] for order in orders if isinstance(order, dict)]
    assert len(order_ids) == len(orders)
    assert len(set(order_ids)) == len(order_ids)


def test_events_stay_in_their_window_and_in_time_order() -> None:
    model = TrafficModel(DEMO_ROOM.products, seed=3, complaint_burst_interval_s=30)
    previous = START_MS
    for window in range(3_000):
        now = START_MS + window * WINDOW_MS
        for event in model.next_batch(now, WINDOW_MS):
            assert now <= ts_of(event) < now + WINDOW_MS
            assert ts_of(event) >= previous
            previous = ts_of(event)


def test_an_empty_window_has_no_events() -> None:
    model = TrafficModel(DEMO_ROOM.products, seed=1)
    assert model.next_batch(START_MS, 0) == []


@pytest.mark.parametrize("rate", [5.0, 30.0, 300.0])
def test_the_rate_is_roughly_as_configured(rate: float) -> None:
    model = TrafficModel(DEMO_ROOM.products, rate=rate, seed=11)
    events = simulate(model, 3)
    per_minute = Counter((ts_of(event) - START_MS) // MINUTE_MS for event in events)
    expected = rate * 60
    tolerance = 0.1 * expected + 3 * math.sqrt(expected)
    assert sorted(per_minute) == [0, 1, 2]
    for minute, count in per_minute.items():
        assert abs(count - expected) <= tolerance, (minute, count, expected)


def test_the_mix_looks_like_a_live_room(ten_minutes: list[Event]) -> None:
    kinds = Counter(str(event["type"]) for event in ten_minutes)
    total = len(ten_minutes)
    assert 0.3 < kinds["chat"] / total < 0.55
    assert 0.2 < kinds["like"] / total < 0.4
    assert kinds["click"] > kinds["cart"] > kinds["order"] > 0
    assert kinds["enter"] > 0
    assert kinds["leave"] > 0
    assert kinds["follow"] > 0
    assert kinds["share"] > 0
    likes = [event["count"] for event in ten_minutes if event["type"] == "like"]
    assert any(isinstance(count, int) and count > 1 for count in likes)
    users = [user_of(event) for event in ten_minutes]
    assert any(user["new"] for user in users)
    assert any(user["fan"] for user in users)
    chats = {text_of(event) for event in ten_minutes if event["type"] == "chat"}
    aliases = [alias for product in DEMO_ROOM.products for alias in product.aliases]
    assert any(alias in text for text in chats for alias in aliases)
    assert chats & set(QUESTIONS)
    assert chats & set(MILD_NEGATIVES)


def test_complaint_bursts_come_from_many_users_within_ten_seconds(
    ten_minutes: list[Event],
) -> None:
    complaints = [event for event in ten_minutes if is_complaint(event)]
    bursts: list[list[Event]] = []
    for event in complaints:
        if bursts and ts_of(event) - ts_of(bursts[-1][-1]) < 20_000:
            bursts[-1].append(event)
        else:
            bursts.append([event])
    # One burst a minute, give or take a quarter, and the first one early.
    assert 8 <= len(bursts) <= 13
    for burst in bursts:
        assert ts_of(burst[-1]) - ts_of(burst[0]) < 10_000
        assert len({user_id(event) for event in burst}) >= 8


def test_no_complaints_when_bursts_are_disabled() -> None:
    model = TrafficModel(DEMO_ROOM.products, seed=42, complaint_burst_interval_s=None)
    events = simulate(model, 10)
    assert not [event for event in events if is_complaint(event)]


def test_only_the_complaint_phrases_carry_complaint_words() -> None:
    ordinary = [
        *GREETINGS,
        *PRAISE,
        *QUESTIONS,
        *INTENT_TEMPLATES,
        *BANTER,
        *MILD_NEGATIVES,
        *ORDERED_TEMPLATES,
        *(template for templates in PRODUCT_QUESTION_TEMPLATES.values() for template in templates),
        *(alias for product in DEMO_ROOM.products for alias in product.aliases),
    ]
    assert not [text for text in ordinary if any(word in text for word in COMPLAINT_KEYWORDS)]
    assert all(any(word in text for word in COMPLAINT_KEYWORDS) for text in COMPLAINT_TEMPLATES)


def test_viewers_act_only_between_entering_and_leaving(ten_minutes: list[Event]) -> None:
    present: set[str] = set()
    left: set[str] = set()
    returned = 0
    for event in ten_minutes:
        viewer = user_id(event)
        if event["type"] == "enter":
            assert viewer not in present
            returned += viewer in left
            present.add(viewer)
        elif event["type"] == "leave":
            assert viewer in present
            present.remove(viewer)
            left.add(viewer)
        else:
            assert viewer in present, event
    assert left
    assert returned > 0
    assert present  # some are still watching


def test_orders_follow_carts_and_carts_follow_clicks(ten_minutes: list[Event]) -> None:
    clicked: set[tuple[str, object]] = set()
    carted: set[tuple[str, object]] = set()
    counts = Counter[str]()
    for event in ten_minutes:
        step = (user_id(event), event.get("product_id"))
        if event["type"] == "click":
            clicked.add(step)
        elif event["type"] == "cart":
            assert step in clicked
            carted.add(step)
        elif event["type"] == "order":
            assert step in carted
        counts[str(event["type"])] += 1
    assert 0.15 < counts["cart"] / counts["click"] < 0.6
    assert 0.2 < counts["order"] / counts["cart"] < 0.9


def test_the_featured_product_draws_most_clicks() -> None:
    model = TrafficModel(DEMO_ROOM.products, seed=5)
    events = simulate(model, 2)  # the first product is featured for at least three minutes
    clicks = Counter(event["product_id"] for event in events if event["type"] == "click")
    assert clicks.most_common(1)[0][0] == DEMO_ROOM.products[0].id
    assert model.featured_product_id == DEMO_ROOM.products[0].id


def test_the_room_settles_around_a_steady_audience() -> None:
    model = TrafficModel(DEMO_ROOM.products, seed=9)
    samples = []
    for minute in range(8):
        simulate_from = START_MS + minute * MINUTE_MS
        for window in range(MINUTE_MS // 1000):
            model.next_batch(simulate_from + window * 1000, 1000)
        samples.append(model.online)
    assert min(samples[2:]) > 0.6 * max(samples[2:])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": -1.0},
        {"rate": math.nan},
        {"complaint_burst_interval_s": 0.0},
        {"run_id": "has space"},
        {"run_id": ""},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"."):
        TrafficModel(DEMO_ROOM.products, **kwargs)  # type: ignore[arg-type]


def test_a_catalog_is_required() -> None:
    with pytest.raises(ValueError, match="product"):
        TrafficModel([])


def test_the_demo_room_matches_the_products_body() -> None:
    assert DEMO_ROOM.to_api() == {"id": "demo", "title": DEMO_ROOM.title, "currency": "CNY"}
    assert CJK.search(DEMO_ROOM.title)
    body = DEMO_ROOM.products_to_api()
    assert 6 <= len(body) <= 8
    assert len({item["id"] for item in body}) == len(body)
    for item in body:
        assert set(item) == {"id", "name", "aliases", "price", "stock"}
        assert IDENTIFIER.fullmatch(item["id"])
        assert CJK.search(item["name"])
        assert item["aliases"]
        assert all(isinstance(alias, str) and alias for alias in item["aliases"])
        assert is_int(item["price"])
        assert item["price"] > 0
        assert is_int(item["stock"])
        assert item["stock"] > 0
