"""``python -m loadtest.rules``: what rule evaluation costs, in this process, on one core.

1. Events: 100,000 chats, likes and orders against 20 rules of every event trigger (what the
   ``rules`` consumer group adds per event, past unpacking and one Redis script per entry).
2. Steps: an hour of the room clock (3,600 steps) against 20 schedule and window rules over
   an hour of 5 s buckets (what the tick adds per room per second, 3,600 times).
"""

from __future__ import annotations

import time
from typing import Any

from livectl.kit.text import fold
from livectl.rules.rules import Figures, Seen, Step, by_event_type, evaluate
from livectl.rules.schemas import RuleSetIn

START = 1_800_000_000_000
_TEXTS = ["求链接", "主播好美", "这个怎么买", "多少钱", "好看", "口红什么色号"]


def _rule_set(triggers: list[dict[str, Any]]) -> RuleSetIn:
    rules = [
        {"id": f"r{n}", "trigger": trigger, "actions": [{"kind": "announce", "text": "x"}]}
        for n, trigger in enumerate(triggers)
    ]
    return RuleSetIn.model_validate({"rules": rules})


def events() -> None:
    rules = _rule_set(
        [{"kind": "chat_keyword", "keywords": [f"词{n}", "链接"]} for n in range(12)]
        + [{"kind": "order", "product_id": f"sku-{n}"} for n in range(4)]
        + [{"kind": "likes", "above": 10_000 * (n + 1)} for n in range(2)]
        + [{"kind": "viewer", "event": "follow"}, {"kind": "online", "above": 500}]
    )
    seen = []
    for n in range(100_000):
        kind = ("chat", "chat", "chat", "like", "order")[n % 5]
        seen.append(
            Seen(
                at_ms=START + n * 10,
                type=kind,
                key=str(n),
                words=fold(_TEXTS[n % len(_TEXTS)]) if kind == "chat" else "",
                product_id=f"sku-{n % 7}" if kind == "order" else None,
                before=Figures(likes=n, online=300),
                after=Figures(likes=n + 1, online=300),
            )
        )
    began = time.perf_counter()
    # As the worker does: each event against the rules watching its type.
    watching = by_event_type(rules)
    fired = sum(
        len(evaluate(watching[one.type], START, one)) for one in seen if one.type in watching
    )
    took = time.perf_counter() - began
    print(
        f"events: {len(seen) / took:,.0f}/s against 20 rules ({fired:,} firings before cool-downs)"
    )


def steps() -> None:
    rules = _rule_set(
        [{"kind": "schedule", "every_s": 60 * (n + 1)} for n in range(5)]
        + [{"kind": "comments_rate", "window_s": 60, "drop_pct": 20 + n} for n in range(5)]
        + [{"kind": "comments_rate", "window_s": 30, "above_per_minute": 100 + n} for n in range(5)]
        + [{"kind": "negative_share", "window_s": 60, "above": 0.2 + n / 20} for n in range(5)]
    )
    comments = {bucket: 20 + bucket % 13 for bucket in range(720)}
    negative = {bucket: bucket % 7 for bucket in range(720)}
    began = time.perf_counter()
    fired = 0
    for second in range(3_600):
        fired += len(evaluate(rules, START, Step(START + second * 1000, comments, negative)))
    took = time.perf_counter() - began
    print(f"steps: {3_600 / took:,.0f}/s against 20 rules ({fired} firings)")


if __name__ == "__main__":
    events()
    steps()
