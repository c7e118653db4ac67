"""A room's live numbers in Redis: applied once per stream entry, read in one call.

Counters are exact (HINCRBY in a hash); unique viewers are HyperLogLogs; who is online is a
sorted set of last signs of life, and open visits a sorted set of when each began. Rates come
from 1 s buckets in a hash, summed and pruned by the same call that reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from livectl.bus.keys import APPLIED_TTL_MS, Channel, RoomKeys
from livectl.bus.lua import APPLY_ONCE, FRESH_BUCKETS, IN_CHUNKS
from livectl.bus.publish import Message
from livectl.bus.scripts import queue_script
from livectl.config import Settings
from livectl.ingest.entries import entry_ms
from livectl.kit import codec
from livectl.kit.clock import now_ms
from livectl.resources import Resources
from livectl.rooms.service import RoomCache
from livectl.stats import repository
from livectl.stats.rules import WINDOW_S, Counters, summarise, viewer_safe
from livectl.store.engine import transaction

# KEYS: applied set, totals, window, uv, new viewers, fans, online, sessions
# ARGV: entry id, applied ttl ms, entry s, entry ms, effect (EntryEffect.wire JSON)
_APPLY = (
    APPLY_ONCE
    + IN_CHUNKS
    + """
local effect = cjson.decode(ARGV[5])
for name, n in pairs(effect.t) do redis.call('HINCRBY', KEYS[2], name, n) end
for metric, n in pairs(effect.w) do
  redis.call('HINCRBY', KEYS[3], ARGV[3] .. ':' .. metric, n)
end
for i, users in ipairs({effect.n, effect.f}) do
  in_chunks(#users, function(first, last)
    redis.call('PFADD', KEYS[4 + i], unpack(users, first, last))
  end)
end
-- Presence comes in runs of one state, and every viewer is in it. A run of viewers present
-- is one ZADD to each set (last seen: GT; visit began: NX); a leave closes that viewer's
-- visit. The scores go as ARGV's string: a Lua number is formatted anew for every argument
-- it is passed as, a third of this script's time.
local at = ARGV[4]
for r = 1, #effect.p, 2 do
  local users = effect.p[r + 1]
  in_chunks(#users, function(first, last)
    redis.call('PFADD', KEYS[4], unpack(users, first, last))
  end)
  if effect.p[r] == 'p' then
    in_chunks(#users, function(first, last)
      local args = {}
      for j = first, last do
        args[#args + 1] = at
        args[#args + 1] = users[j]
      end
      redis.call('ZADD', KEYS[7], 'GT', unpack(args))
      redis.call('ZADD', KEYS[8], 'NX', unpack(args))
    end)
  else
    for _, user in ipairs(users) do
      redis.call('ZREM', KEYS[7], user)
      local began = redis.call('ZSCORE', KEYS[8], user)
      if began then
        redis.call('ZREM', KEYS[8], user)
        redis.call('HINCRBY', KEYS[2], 'dwell_ms', math.max(0, tonumber(at) - tonumber(began)))
        redis.call('HINCRBY', KEYS[2], 'sessions', 1)
      end
    end
  end
end
return 1
"""
)

# KEYS: totals, window, uv, new viewers, fans, online, sessions, pin, room
# ARGV: now ms, online timeout ms, window s, 'tick' or 'read'
# Returns the room's cached record too, so a tick needs no other read. A tick also closes
# the sessions of viewers who vanished, adds the pinned product's exposure since the last
# tick, prunes old buckets and says when a minute has ended.
_READ = (
    FRESH_BUCKETS
    + """
local now = tonumber(ARGV[1])
local tick = ARGV[4] == 'tick'
local ended_minute = -1
if tick then
  local cutoff = now - tonumber(ARGV[2])
  local gone = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', cutoff, 'WITHSCORES', 'LIMIT', 0, 1000)
  local users = {}
  for i = 1, #gone, 2 do
    users[#users + 1] = gone[i]
    local began = redis.call('ZSCORE', KEYS[7], gone[i])
    if began then
      local dwell = math.max(0, tonumber(gone[i + 1]) - tonumber(began))
      redis.call('HINCRBY', KEYS[1], 'dwell_ms', dwell)
      redis.call('HINCRBY', KEYS[1], 'sessions', 1)
    end
  end
  if #users > 0 then
    redis.call('ZREM', KEYS[6], unpack(users))
    redis.call('ZREM', KEYS[7], unpack(users))
  end
  local last = tonumber(redis.call('HGET', KEYS[1], 'tick_ms') or '0')
  local pinned = redis.call('GET', KEYS[8])
  if pinned and last > 0 then
    -- Capped: a room nobody ticked for a while was not necessarily showing its pin.
    local shown = math.max(0, math.min(now - last, 5000))
    redis.call('HINCRBY', KEYS[1], 'exposure_ms:' .. pinned, shown)
  end
  redis.call('HSET', KEYS[1], 'tick_ms', now)
  local minute = math.floor(now / 60000)
  local rolled = tonumber(redis.call('HGET', KEYS[1], 'minute') or '-1')
  if rolled ~= minute then
    redis.call('HSET', KEYS[1], 'minute', minute)
    ended_minute = rolled
  end
end
local from = math.floor(now / 1000) - tonumber(ARGV[3]) + 1
local sums = {}
local fresh = fresh_buckets(KEYS[2], from, tick)
for i = 1, #fresh, 2 do
  local metric = string.sub(fresh[i], string.find(fresh[i], ':', 1, true) + 1)
  sums[metric] = (sums[metric] or 0) + tonumber(fresh[i + 1])
end
local window = {}
for metric, n in pairs(sums) do
  window[#window + 1] = metric
  window[#window + 1] = n
end
return {redis.call('HGETALL', KEYS[1]), window, redis.call('ZCARD', KEYS[6]),
        redis.call('PFCOUNT', KEYS[3]), redis.call('PFCOUNT', KEYS[4]),
        redis.call('PFCOUNT', KEYS[5]), ended_minute, redis.call('HGET', KEYS[9], 'json') or ''}
"""
)


def _viewer_keys(keys: RoomKeys) -> list[str]:
    return [keys.stats_viewers("all"), keys.stats_viewers("new"), keys.stats_viewers("fans")]


@dataclass(frozen=True, slots=True)
class StatsRead:
    counters: Counters
    # On a tick, the minute (in epoch minutes) that has just ended, if one has.
    ended_minute: int | None
    # From the room's cached record; None when that is missing.
    product_ids: list[str] | None


class StatsStore:
    """The room's counters in Redis."""

    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._online_timeout_ms = settings.online_timeout_ms
        self._apply = redis.register_script(_APPLY)
        self._read = redis.register_script(_READ)

    async def apply(
        self,
        pipe: Pipeline,
        room: str,
        group: str,
        entry_id: str,
        *,
        figures: bytes,
    ) -> None:
        """Queue one entry's effect on ``pipe`` (``EntryEffect.wire``, encoded); applied once,
        however often it is queued. Rates count it in the second it came, not the second this
        worker got to it."""
        keys = RoomKeys(room)
        at_ms = entry_ms(entry_id)
        await queue_script(
            pipe,
            self._apply,
            [
                keys.applied(group, entry_id),
                keys.stats_totals,
                keys.stats_window,
                *_viewer_keys(keys),
                keys.online,
                keys.sessions,
            ],
            [
                entry_id,
                APPLIED_TTL_MS,
                at_ms // 1000,
                at_ms,
                figures,
            ],
        )

    async def read(self, room: str, now_ms: int, *, tick: bool) -> StatsRead:
        keys = RoomKeys(room)
        totals, window, online, uv, new, fans, ended, state = await self._read(
            keys=[
                keys.stats_totals,
                keys.stats_window,
                *_viewer_keys(keys),
                keys.online,
                keys.sessions,
                keys.pin,
                keys.meta,
            ],
            args=[now_ms, self._online_timeout_ms, WINDOW_S, "tick" if tick else "read"],
        )
        return StatsRead(
            Counters(codec.int_fields(totals), codec.int_fields(window), online, uv, new, fans),
            ended_minute=int(ended) if int(ended) >= 0 else None,
            product_ids=[p["id"] for p in codec.loads(state)["products"]] if state else None,
        )


class StatsService:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._store = StatsStore(resources.redis, resources.settings)
        self._cache = RoomCache(resources)

    async def current(self, room: str, now_ms: int) -> dict[str, Any]:
        state = await self._cache.state(room)  # 404 for an unknown room
        read = await self._store.read(room, now_ms, tick=False)
        return summarise(read.counters, [p.id for p in state.products])

    async def tick(self, room: str, now_ms: int) -> None:
        """Once a second while live: push the figures; at each minute's end, roll it up."""
        read = await self._store.read(room, now_ms, tick=True)
        product_ids = read.product_ids
        if product_ids is None:
            state = await self._cache.state_or_none(room)
            product_ids = [p.id for p in state.products] if state else []
        stats = summarise(read.counters, product_ids)
        publisher = self._resources.publisher
        await publisher.publish(room, [Message("stats", stats)], (Channel.CONSOLE,))
        await publisher.publish(room, [Message("stats", viewer_safe(stats))], (Channel.LIVE,))
        if read.ended_minute is not None:
            async with transaction(self._resources.sessionmaker) as tx:
                await repository.upsert_minute(tx.session, room, read.ended_minute * 60_000, stats)

    async def roll_up_last_minute(self, room: str, ended_at_ms: int) -> None:
        """When the live ends: its last, unfinished minute, which no tick will roll up."""
        stats = await self.current(room, now_ms())
        minute_ms = ended_at_ms // 60_000 * 60_000
        async with transaction(self._resources.sessionmaker) as tx:
            await repository.upsert_minute(tx.session, room, minute_ms, stats)

    async def minutes(self, room: str) -> list[dict[str, Any]]:
        await self._cache.state(room)  # 404 for an unknown room
        async with self._resources.sessionmaker() as session:
            rows = await repository.list_minutes(session, room)
        return [{"minute": row.minute_ms, "stats": row.stats} for row in rows]
