"""The rules concern: events fire event triggers and feed the metric windows (consumer group
``rules``); the room tick steps the room clock through schedules, windows and shop state, and
finishes firings a dead worker left claimed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from livectl.bus.consumer import Entry
from livectl.bus.keys import APPLIED_TTL_MS, RoomKeys
from livectl.bus.scripts import ScriptCall, run_many
from livectl.coupons.service import CouponService
from livectl.ingest.entries import entry_ms, unpack_entry
from livectl.kit import codec
from livectl.kit.text import fold
from livectl.opinion.analysis import analyse
from livectl.opinion.keywords import Watchlist
from livectl.opinion.service import WatchlistService
from livectl.resources import Resources
from livectl.rooms.service import RoomCache
from livectl.rules.rules import (
    STEP_MS,
    DropSeen,
    Figures,
    Firing,
    Seen,
    Shop,
    Step,
    bucket_of,
    evaluate,
    steps_between,
)
from livectl.rules.schemas import (
    BUCKET_MS,
    MAX_WINDOW_S,
    STATE_TRIGGERS,
    DropState,
    NegativeShare,
    RuleSetIn,
)
from livectl.rules.service import FiringService, RuleService, RuleSetInForce

GROUP = "rules"

# The clock's steps wait this long (wall time) for their events to be counted, so a step
# sees the same windows whether the events came live or replayed.
GRACE_MS = 2_000
# Steps one tick catches up at most (a replay at 60x takes 60 a tick).
MAX_STEPS = 120
# Where a live room's clock starts stepping when it has no record of where it stopped.
FRESH_START_MS = 60_000
# Buckets kept: the longest window and its baseline, twice.
KEPT_BUCKETS = 2 * MAX_WINDOW_S * 1000 // BUCKET_MS

# KEYS: figures, buckets, entry marker. ARGV: marker ttl, likes delta, online delta, then
# bucket field and increment pairs. Applies an entry once and answers "likes:online" as
# they were just before it, the same on every redelivery.
_APPLY = """
local done = redis.call('GET', KEYS[3])
if done then return done end
local likes = tonumber(redis.call('HGET', KEYS[1], 'likes') or '0')
local online = tonumber(redis.call('HGET', KEYS[1], 'online') or '0')
local before = likes .. ':' .. online
redis.call('SET', KEYS[3], before, 'PX', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'likes', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'online', ARGV[3])
for i = 4, #ARGV, 2 do redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1]) end
return before
"""

_DELTAS = {"enter": (0, 1), "leave": (0, -1)}


@dataclass(frozen=True, slots=True)
class RoomClock:
    """The room's event time: wall time for a live room; for a replay, the recorded live's
    time, running ``speed`` times faster from the moment the replay began."""

    started_ms: int
    until_ms: int | None = None  # the last step evaluated
    origin_event_ms: int = 0
    origin_wall_ms: int = 0
    speed: float = 1.0

    def event_time(self, wall_ms: int) -> int:
        return self.origin_event_ms + int((wall_ms - self.origin_wall_ms) * self.speed)


async def room_clock(resources: Resources, room: str) -> RoomClock | None:
    """None for a room that has not started."""
    stored: dict[bytes, bytes] = await resources.redis.hgetall(  # type: ignore[assignment]
        RoomKeys(room).rules_clock
    )
    fields = {codec.text(key): codec.text(value) for key, value in stored.items()}
    until = int(fields["until"]) if "until" in fields else None
    if "started_ms" in fields:
        return RoomClock(
            started_ms=int(fields["started_ms"]),
            until_ms=until,
            origin_event_ms=int(fields["origin_event_ms"]),
            origin_wall_ms=int(fields["origin_wall_ms"]),
            speed=float(fields["speed"]),
        )
    state = await RoomCache(resources).state_or_none(room)
    if state is None or state.room.started_at is None:
        return None
    return RoomClock(started_ms=state.room.started_at, until_ms=until)


def event_time(event: dict[str, Any], appended_ms: int) -> int:
    """The event's own time, never later than its arrival: a client cannot push its events
    into windows to come (a replay keeps the recorded times, all long before arrival)."""
    return min(int(event["ts"]), appended_ms)


def _figures(raw: bytes) -> Figures:
    likes, _, online = codec.text(raw).partition(":")
    return Figures(likes=int(likes), online=int(online))


def _watches_negative(rules: RuleSetIn) -> bool:
    return any(isinstance(rule.trigger, NegativeShare) for rule in rules.rules if rule.enabled)


class RulesWorker:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._rules = RuleService(resources)
        self._firings = FiringService(resources)
        self._watchlists = WatchlistService(resources)
        self._apply = resources.redis.register_script(_APPLY)

    async def handle(self, room: str, entries: Sequence[Entry]) -> None:
        clock = await room_clock(self._resources, room)
        if clock is None:
            return
        in_force = await self._rules.in_force(room)
        watchlist = (
            await self._watchlists.watchlist(room) if _watches_negative(in_force.rules) else None
        )
        keys = RoomKeys(room)
        calls: list[ScriptCall] = []
        per_entry: list[list[Seen]] = []
        for entry in entries:
            seen, totals, buckets = observe(entry, clock.started_ms, watchlist)
            per_entry.append(seen)
            args: list[Any] = [APPLIED_TTL_MS, totals.likes, totals.online]
            for field, count in buckets.items():
                args += (field, count)
            calls.append(
                ([keys.rules_figures, keys.rules_buckets, keys.rules_applied(entry.id)], args)
            )
        results = await run_many(self._resources.redis, self._apply, calls)
        firings: list[Firing] = []
        for result, seen in zip(results, per_entry, strict=True):
            if isinstance(result, Exception):
                raise result
            base = _figures(result)
            for one in seen:
                watching = in_force.by_event_type.get(one.type)
                if watching is not None:
                    firings += evaluate(watching, clock.started_ms, _shifted(one, base))
        if firings:
            await self._firings.claim(room, in_force, firings, clock.started_ms)


def observe(
    entry: Entry, started_ms: int, watchlist: Watchlist | None
) -> tuple[list[Seen], Figures, dict[str, int]]:
    """An entry's events as the rules see them, with figures counted from the entry's start
    (shifted by the room's figures before it once the script has told them), the entry's
    totals, and its comments (and negative ones, with a watchlist) per bucket."""
    appended = entry_ms(entry.id)
    seen: list[Seen] = []
    likes = online = 0
    buckets: dict[str, int] = {}
    for item in unpack_entry(entry.id, entry.fields):
        event = item.event
        at = event_time(event, appended)
        kind = event["type"]
        like_delta, online_delta = _DELTAS.get(kind, (0, 0))
        if kind == "like":
            like_delta = int(event.get("count") or 1)
        words = ""
        if kind == "chat":
            words = fold(event["text"])
            if at >= started_ms:
                bucket = bucket_of(at, started_ms)
                buckets[f"c:{bucket}"] = buckets.get(f"c:{bucket}", 0) + 1
                if watchlist is not None and analyse(event["text"], watchlist).negative:
                    buckets[f"n:{bucket}"] = buckets.get(f"n:{bucket}", 0) + 1
        seen.append(
            Seen(
                at_ms=at,
                type=kind,
                key=item.key,
                words=words,
                product_id=event.get("product_id"),
                before=Figures(likes, online),
                after=Figures(likes + like_delta, online + online_delta),
            )
        )
        likes += like_delta
        online += online_delta
    return seen, Figures(likes, online), buckets


def _shifted(seen: Seen, base: Figures) -> Seen:
    def plus(figures: Figures) -> Figures:
        return Figures(base.likes + figures.likes, base.online + figures.online)

    # Built, not dataclasses.replace(): this runs once per event.
    return Seen(
        seen.at_ms,
        seen.type,
        seen.key,
        seen.words,
        seen.product_id,
        plus(seen.before),
        plus(seen.after),
    )


class RulesTick:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._rules = RuleService(resources)
        self._firings = FiringService(resources)

    async def tick(self, room: str, now_ms: int) -> None:
        await self._firings.recover(room)
        clock = await room_clock(self._resources, room)
        if clock is None:
            return
        in_force = await self._rules.in_force(room)
        horizon = clock.event_time(now_ms - GRACE_MS)
        if not in_force.rules.rules:
            if await self._live(room):
                await self._resources.redis.hset(RoomKeys(room).rules_clock, "until", horizon)
            return
        after = clock.until_ms
        if after is None:
            after = max(clock.started_ms - STEP_MS, horizon - FRESH_START_MS)
        steps = steps_between(after, horizon, clock.started_ms)[:MAX_STEPS]
        if not steps:
            return
        figures, comments, negative = await self._windows(room)
        firings: list[Firing] = []
        for at in steps:
            step = Step(at, comments, negative, figures)
            firings += evaluate(in_force.rules, clock.started_ms, step)
        firings += evaluate(
            in_force.rules, clock.started_ms, await self._shop(room, in_force, steps[-1], figures)
        )
        # Checked last, just before anything is written: a tick whose time was taken before the
        # live ended may run after the end (behind the other rooms' ticks).
        if not await self._live(room):
            return
        if firings:
            await self._firings.claim(room, in_force, firings, clock.started_ms)
        await self._resources.redis.hset(RoomKeys(room).rules_clock, "until", steps[-1])
        await self._prune(room, comments, bucket_of(steps[-1], clock.started_ms))

    async def _live(self, room: str) -> bool:
        """Whether the room is still live: its clock stops where it was when the live ended, so
        the live's firings are settled then, and a replay stepping to there reproduces them."""
        state = await RoomCache(self._resources).state_or_none(room)
        return state is not None and state.room.status == "live"

    async def _windows(self, room: str) -> tuple[Figures, dict[int, int], dict[int, int]]:
        keys = RoomKeys(room)
        async with self._resources.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.rules_figures, ["likes", "online"])
            pipe.hgetall(keys.rules_buckets)
            (likes, online), buckets = await pipe.execute()
        comments: dict[int, int] = {}
        negative: dict[int, int] = {}
        for field, count in buckets.items():
            kind, _, index = codec.text(field).partition(":")
            (comments if kind == "c" else negative)[int(index)] = int(count)
        return Figures(int(likes or 0), int(online or 0)), comments, negative

    async def _shop(self, room: str, in_force: RuleSetInForce, at: int, figures: Figures) -> Shop:
        watched = [
            r.trigger
            for r in in_force.rules.rules
            if r.enabled and isinstance(r.trigger, STATE_TRIGGERS)
        ]
        if not watched:
            return Shop(at, figures=figures)
        state = await RoomCache(self._resources).state(room)
        sold_out = frozenset(p.id for p in state.products if p.sold_out)
        drops: list[DropSeen] = []
        if any(isinstance(trigger, DropState) for trigger in watched):
            coupons = CouponService(self._resources)
            for drop, view in await coupons.history(room):
                drops.append(
                    DropSeen(drop.id, drop.template_id, view.state == "live", view.remaining)
                )
        return Shop(at, sold_out, drops, figures)

    async def _prune(self, room: str, comments: dict[int, int], current: int) -> None:
        old = [index for index in comments if index < current - KEPT_BUCKETS]
        if old:
            fields = [f"{kind}:{index}" for index in old for kind in ("c", "n")]
            await self._resources.redis.hdel(RoomKeys(room).rules_buckets, *fields)
