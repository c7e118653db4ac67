"""``python -m loadtest.giveaways --redis-url URL``: what giveaways cost.

1. Entry matching (fold the chat, match the keyword), in this process, on one core.
2. ``GiveawayService.record_entries`` against a real Redis: events per second taken in while
   two giveaways are open (a keyword one and a follow one), 100 events per call as a stream
   entry holds them, 5,000 distinct viewers.
3. The draw and its verification over 100,000 entries.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from typing import Any

from livectl.bus.keys import RoomKeys
from livectl.config import Settings
from livectl.giveaways.rules import commitment, draw, enters, entries_hash, verify
from livectl.giveaways.service import GiveawayService
from livectl.ingest.entries import RoomEvent
from livectl.resources import open_resources

_TEXTS = ["想要福袋!!", "主播好", "想 要 福 袋", "口红什么色号", "多少钱", "想要福袋想要"]


def _events(count: int, start_ms: int) -> list[RoomEvent]:
    events = []
    for n in range(count):
        user = {"id": f"viewer-{n % 5000}"}
        event: dict[str, Any] = (
            {"type": "follow", "user": user}
            if n % 10 == 9
            else {"type": "chat", "user": user, "text": _TEXTS[n % len(_TEXTS)]}
        )
        events.append(RoomEvent(f"{start_ms + n // 100}-0", n % 100, event))
    return events


def bench_matching(events: list[RoomEvent]) -> float:
    terms = {"entry": "keyword", "keyword": "想要福袋"}
    started = time.perf_counter()
    for item in events:
        enters(terms, item.event)
    return len(events) / (time.perf_counter() - started)


async def bench_record(redis_url: str, events: list[RoomEvent], now: int) -> float:
    settings = Settings(
        redis_url=redis_url,
        # Never connected to: recording entries touches Redis only.
        database_url="postgresql+asyncpg://unused@127.0.0.1:1/unused",
        secret="s" * 48,
    )
    room = f"bench-{secrets.token_hex(4)}"
    keys = RoomKeys(room)
    async with open_resources(settings) as resources:
        service = GiveawayService(resources)
        for giveaway_id, entry, keyword in [
            ("gw-k", "keyword", "想要福袋"),
            ("gw-f", "follow", ""),
        ]:
            await resources.redis.hset(
                keys.giveaway(giveaway_id),
                mapping={
                    "entry": entry,
                    "keyword": keyword,
                    "audience": "all",
                    "created_at": now - 1,
                    "ends_at": now + 3_600_000,
                },
            )
            await resources.redis.sadd(keys.giveaways_open, giveaway_id)
        started = time.perf_counter()
        for first in range(0, len(events), 100):
            await service.record_entries(room, events[first : first + 100])
        rate = len(events) / (time.perf_counter() - started)
        entered = await resources.redis.zcard(f"{keys.giveaway('gw-k')}:entrants")
        await resources.redis.delete(
            *(
                f"{keys.giveaway(g)}{suffix}"
                for g in ("gw-k", "gw-f")
                for suffix in ("", ":entrants")
            ),
            keys.giveaways_open,
        )
    print(f"  (keyword giveaway entrants: {entered})")
    return rate


def bench_draw(size: int) -> tuple[float, float]:
    seed = secrets.token_bytes(32)
    entries = sorted(f"viewer-{n:07d}" for n in range(size))
    started = time.perf_counter()
    winners = draw(seed, entries, 1000)
    drawn_s = time.perf_counter() - started
    started = time.perf_counter()
    assert verify(
        seed=seed.hex(),
        commitment_hex=commitment(seed),
        entries=entries,
        entries_hash_hex=entries_hash(entries),
        winners=1000,
        winner_ids=winners,
    )
    return drawn_s, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.giveaways")
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args(argv)
    now = int(time.time() * 1000)
    events = _events(args.events, now)
    print(f"entry matching, one core: {bench_matching(events):,.0f} events/s")
    rate = asyncio.run(bench_record(args.redis_url, events, now))
    print(f"record_entries, 2 open giveaways, 100 events a call: {rate:,.0f} events/s")
    drawn_s, verified_s = bench_draw(100_000)
    print(f"draw 1,000 of 100,000 entries: {drawn_s * 1000:.1f} ms")
    print(f"verify that draw (sort check, hash, re-draw): {verified_s * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
