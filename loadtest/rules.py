"""``python -m loadtest.rules [--redis-url URL]``: what rules cost, on one core.

1. Events: 100,000 chats, likes and orders against 20 rules of every event trigger, pure
   evaluation (each event against the rules watching its type).
2. Steps: an hour of the room clock (3,600 steps) against 20 schedule and window rules over
   an hour of 5 s buckets (what the tick adds per room per second, 3,600 times).
3. With ``--redis-url``: the ``rules`` consumer's handler itself (unpack, count figures and
   buckets with one script per entry, evaluate, claim) on entries of 100 events, the rules
   past their maximum (the steady state of a busy room: claims spared in process).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from typing import Any

from livectl.bus.consumer import Entry
from livectl.bus.keys import RoomKeys
from livectl.config import Settings
from livectl.kit import codec
from livectl.kit.text import fold
from livectl.resources import open_resources
from livectl.rules.rules import Figures, Seen, Step, by_event_type, evaluate
from livectl.rules.schemas import RuleSetIn
from livectl.rules.worker import RulesWorker

START = 1_800_000_000_000
_TEXTS = ["求链接", "主播好美", "这个怎么买", "多少钱", "好看", "口红什么色号"]


EVENT_TRIGGERS: list[dict[str, Any]] = [
    *({"kind": "chat_keyword", "keywords": [f"词{n}", "链接"]} for n in range(12)),
    *({"kind": "order", "product_id": f"sku-{n}"} for n in range(4)),
    *({"kind": "likes", "above": 10_000 * (n + 1)} for n in range(2)),
    {"kind": "viewer", "event": "follow"},
    {"kind": "online", "above": 500},
]


def _rule_set(triggers: list[dict[str, Any]], **fields: Any) -> RuleSetIn:
    rules = [
        {"id": f"r{n}", "trigger": trigger, "actions": [{"kind": "announce", "text": "x"}]} | fields
        for n, trigger in enumerate(triggers)
    ]
    return RuleSetIn.model_validate({"rules": rules})


def events() -> None:
    rules = _rule_set(EVENT_TRIGGERS)
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


def _event(n: int) -> dict[str, Any]:
    user = {"id": f"viewer-{n % 5000}"}
    match n % 5:
        case 3:
            return {"type": "like", "user": user, "count": 3}
        case 4:
            order = {"id": f"o{n}", "quantity": 1, "amount": 9900}
            return {"type": "order", "user": user, "product_id": f"sku-{n % 7}", "order": order}
    return {"type": "chat", "user": user, "text": _TEXTS[n % len(_TEXTS)]}


async def consumer(redis_url: str, count: int) -> None:
    settings = Settings(
        redis_url=redis_url,
        # Never connected to: the rules are past their maximum, so nothing is recorded.
        database_url="postgresql+asyncpg://unused@127.0.0.1:1/unused",
        secret="s" * 48,
    )
    room = f"bench-{secrets.token_hex(4)}"
    keys = RoomKeys(room)
    now = int(time.time() * 1000)
    rules = _rule_set(EVENT_TRIGGERS, max_firings=1)
    entries = [
        Entry(f"{now + n}-0", {b"e": codec.dumps([_event(n * 100 + i) for i in range(100)])})
        for n in range(count // 100)
    ]
    async with open_resources(settings) as resources:
        redis = resources.redis
        await redis.set(keys.rules, codec.dumps({"version": 1, "rules": rules.model_dump()}))
        await redis.hset(
            keys.rules_clock,
            mapping={"started_ms": now, "origin_event_ms": 0, "origin_wall_ms": 0, "speed": 1},
        )
        await redis.hset(keys.rules_counts, mapping={f"1:{r.id}": "1:0" for r in rules.rules})
        worker = RulesWorker(resources)
        began = time.perf_counter()
        for first in range(0, len(entries), 10):
            await worker.handle(room, entries[first : first + 10])
        took = time.perf_counter() - began
        likes = await redis.hget(keys.rules_figures, "likes")
        scan = [key async for key in redis.scan_iter(match=f"{keys.tag}:rules*")]
        await redis.delete(*scan)
    print(f"consumer: {count / took:,.0f} events/s, entries of 100, 20 rules (likes {likes!r})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m loadtest.rules")
    parser.add_argument("--redis-url")
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    events()
    steps()
    if args.redis_url:
        asyncio.run(consumer(args.redis_url, args.events))
