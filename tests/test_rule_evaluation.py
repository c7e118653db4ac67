"""Rule evaluation as a pure function, on scripted event streams and clock steps."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from livectl.kit.text import fold
from livectl.rules.rules import (
    DropSeen,
    Figures,
    Firing,
    Seen,
    Shop,
    Step,
    bucket_of,
    by_event_type,
    evaluate,
    steps_between,
)
from livectl.rules.schemas import RuleSetIn

START = 1_700_000_000_000


def rules_of(trigger: dict[str, Any], **rule: Any) -> RuleSetIn:
    return RuleSetIn.model_validate(
        {
            "rules": [
                {"id": "r1", "trigger": trigger, "actions": [{"kind": "announce", "text": "hi"}]}
                | rule
            ]
        }
    )


def on_events(rules: RuleSetIn, events: list[Seen]) -> list[Firing]:
    return [firing for seen in events for firing in evaluate(rules, START, seen)]


def chat(at_s: float, text: str) -> Seen:
    return Seen(at_ms=START + int(at_s * 1000), type="chat", words=fold(text))


def test_chat_keyword_matches_folded_text_and_nothing_else() -> None:
    rules = rules_of({"kind": "chat_keyword", "keywords": ["链接", "怎麼買"]})
    fired = on_events(rules, [chat(1, "主播發鏈接"), chat(2, "好看"), chat(3, "这个怎么买")])
    assert [f.at_ms - START for f in fired] == [1000, 3000]
    assert "链接" in fired[0].reason


def test_order_of_one_product_and_viewer_actions() -> None:
    order = rules_of({"kind": "order", "product_id": "p1"})
    events = [
        Seen(START + 10, "order", product_id="p2"),
        Seen(START + 20, "order", product_id="p1"),
        Seen(START + 30, "click", product_id="p1"),
    ]
    assert [f.at_ms for f in on_events(order, events)] == [START + 20]
    follow = rules_of({"kind": "viewer", "event": "follow"})
    stream = [Seen(START + 1, "share"), Seen(START + 2, "follow"), Seen(START + 3, "enter")]
    assert [f.at_ms for f in on_events(follow, stream)] == [START + 2]


def test_likes_and_online_fire_on_the_event_that_crosses() -> None:
    likes = rules_of({"kind": "likes", "above": 10_000})
    events = [
        Seen(START + 1, "like", before=Figures(likes=9_000), after=Figures(likes=9_999)),
        Seen(START + 2, "like", before=Figures(likes=9_999), after=Figures(likes=10_004)),
        Seen(START + 3, "like", before=Figures(likes=10_004), after=Figures(likes=10_005)),
    ]
    assert [f.at_ms for f in on_events(likes, events)] == [START + 2]
    online = rules_of({"kind": "online", "above": 2})
    entering = [
        Seen(START + n, "enter", before=Figures(online=n), after=Figures(online=n + 1))
        for n in range(5)
    ]
    assert [f.at_ms for f in on_events(online, entering)] == [START + 2]


def steps(rules: RuleSetIn, seconds: int, **windows: dict[int, int]) -> list[int]:
    """The offsets (s) of the steps that fire, over the live's first ``seconds``."""
    fired = []
    for at in steps_between(START - 1000, START + seconds * 1000, START):
        fired += evaluate(
            rules, START, Step(at, windows.get("comments", {}), windows.get("negative", {}))
        )
    return [(f.at_ms - START) // 1000 for f in fired]


def test_schedules_every_n_seconds_and_once_after_the_start() -> None:
    assert steps(rules_of({"kind": "schedule", "every_s": 30}), 100) == [30, 60, 90]
    assert steps(rules_of({"kind": "schedule", "after_start_s": 45}), 100) == [45]


def test_comments_rate_fires_when_it_drops_below_its_baseline_once() -> None:
    rules = rules_of({"kind": "comments_rate", "window_s": 60, "baseline_s": 300, "drop_pct": 30})
    # 10 comments per 5 s bucket (120/min) for 8 minutes, then 5 per bucket (60/min).
    busy = dict.fromkeys(range(96), 10)
    quiet = busy | dict.fromkeys(range(96, 200), 5)
    assert steps(rules, 480, comments=busy) == []
    fired = steps(rules, 900, comments=quiet)
    # The last minute falls 30% below the average of the 5 minutes before it once 8 of its 12
    # buckets are quiet (80/min against 120); it fires once, when that starts to hold.
    assert fired == [(96 + 8) * 5]


def test_comments_rate_absolute_and_negative_share() -> None:
    above = rules_of({"kind": "comments_rate", "window_s": 10, "above_per_minute": 60})
    assert steps(above, 60, comments={4: 20}) == [25]
    assert steps(above, 60, comments={4: 9}) == []
    negative = rules_of(
        {"kind": "negative_share", "window_s": 10, "above": 0.3, "min_comments": 10}
    )
    assert steps(negative, 60, comments={2: 10, 3: 10}, negative={2: 2, 3: 5}) == [20]
    # Too few comments for a share to mean anything.
    assert steps(negative, 60, comments={2: 3}, negative={2: 3}) == []


def test_shop_state_fires_per_product_and_per_drop() -> None:
    sold_out = rules_of({"kind": "sold_out"})
    shop = Shop(START + 5_000, sold_out=frozenset({"p2", "p1"}))
    assert [f.instant for f in evaluate(sold_out, START, shop)] == ["sold_out:p1", "sold_out:p2"]
    one = rules_of({"kind": "sold_out", "product_id": "p2"})
    assert [f.instant for f in evaluate(one, START, shop)] == ["sold_out:p2"]
    low = rules_of({"kind": "coupon", "template_id": "t1", "below_remaining": 10})
    drops = [
        DropSeen("cp-a", "t1", live=True, remaining=5),
        DropSeen("cp-b", "t2", live=True, remaining=5),
        DropSeen("cp-c", "t1", live=True, remaining=50),
        DropSeen("cp-d", "t1", live=False, remaining=0),
    ]
    assert [f.instant for f in evaluate(low, START, Shop(START, drops=drops))] == ["low:cp-a"]
    ended = rules_of({"kind": "coupon", "ended": True})
    assert [f.instant for f in evaluate(ended, START, Shop(START, drops=drops))] == ["ended:cp-d"]


def test_disabled_rules_windows_and_conditions_hold_firings_back() -> None:
    trigger = {"kind": "chat_keyword", "keywords": ["链接"]}
    events = [chat(5, "链接"), chat(50, "链接"), chat(500, "链接")]
    assert on_events(rules_of(trigger, enabled=False), events) == []
    windowed = rules_of(trigger, active={"from_s": 10, "until_s": 100})
    assert [f.at_ms - START for f in on_events(windowed, events)] == [50_000]
    conditioned = rules_of(trigger, conditions=[{"metric": "online", "above": 100}])
    crowded = Seen(START + 1, "chat", words="链接", after=Figures(online=101))
    assert on_events(conditioned, [chat(1, "链接"), crowded]) == evaluate(
        conditioned, START, crowded
    )
    assert len(evaluate(conditioned, START, crowded)) == 1


def test_buckets_and_steps_count_from_the_live_start() -> None:
    assert bucket_of(START + 4_999, START) == 0
    assert bucket_of(START + 5_000, START) == 1
    assert list(steps_between(START + 2_000, START + 5_500, START)) == [
        START + 3_000,
        START + 4_000,
        START + 5_000,
    ]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"trigger": {"kind": "schedule", "every_s": 30}, "colour": "red"}, "colour"),
        ({"trigger": {"kind": "schedule"}}, "exactly one of every_s"),
        ({"trigger": {"kind": "comments_rate", "window_s": 7, "above_per_minute": 5}}, "multiple"),
        (
            {
                "trigger": {
                    "kind": "comments_rate",
                    "window_s": 300,
                    "baseline_s": 60,
                    "drop_pct": 30,
                }
            },
            "baseline_s must be longer",
        ),
        ({"trigger": {"kind": "negative_share", "above": 1.5}}, "less than 1"),
        ({"trigger": {"kind": "likes", "above": 0}}, "greater than or equal to 1"),
        (
            {"trigger": {"kind": "likes", "above": 5}, "active": {"from_s": 60, "until_s": 30}},
            "until_s",
        ),
        ({"trigger": {"kind": "likes", "above": 5}, "actions": []}, "at least 1"),
        ({"trigger": {"kind": "weather"}}, "does not match any of the expected tags"),
    ],
)
def test_bad_rules_are_refused_with_the_reason(rule: dict[str, Any], expected: str) -> None:
    body = {"id": "r1", "actions": [{"kind": "announce", "text": "hi"}]} | rule
    with pytest.raises(ValidationError, match=expected):
        RuleSetIn.model_validate({"rules": [body]})


def test_events_are_checked_against_the_rules_watching_their_type() -> None:
    rules = RuleSetIn.model_validate(
        {
            "rules": [
                {"id": f"r{n}", "trigger": trigger, "actions": [{"kind": "announce", "text": "x"}]}
                for n, trigger in enumerate(
                    [
                        {"kind": "chat_keyword", "keywords": ["链接"]},
                        {"kind": "likes", "above": 5},
                        {"kind": "schedule", "every_s": 60},
                        {"kind": "viewer", "event": "share"},
                        {"kind": "chat_keyword", "keywords": ["买"]},
                    ]
                )
            ]
        }
    )
    watching = by_event_type(rules)
    assert {kind: [r.id for r in subset.rules] for kind, subset in watching.items()} == {
        "chat": ["r0", "r4"],
        "like": ["r1"],
        "share": ["r3"],
    }
