"""What Redis knows about each relayed chat message: mutes, slow mode, repeats and waves.

One script call per relayed batch. Repeats and waves are sorted sets scored by the message's
server time, counted up to that time, so a redelivered message is seen as it was the first
time (its own member is rewritten, not added twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from livectl.bus.keys import RoomKeys
from livectl.moderation.rules import FLOOD_WINDOW_MS, WAVE_WINDOW_MS, Sighting

# KEYS: mutes hash, then per message: repeats zset, senders zset, slow-mode key
# ARGV: flood window ms, wave window ms, slow mode ms, then per message: at ms, user, key,
#       whether the text could make a wave (1/0)
_SIGHT = """
local flood_ms, wave_ms, slow_ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for i = 0, (#KEYS - 1) / 3 - 1 do
  local repeats, senders, slow = KEYS[2 + 3 * i], KEYS[3 + 3 * i], KEYS[4 + 3 * i]
  local at, user, key = tonumber(ARGV[4 + 4 * i]), ARGV[5 + 4 * i], ARGV[6 + 4 * i]
  local muted = tonumber(redis.call('HGET', KEYS[1], user) or '0')
  redis.call('ZADD', repeats, at, key)
  redis.call('PEXPIRE', repeats, flood_ms)
  local repeated = redis.call('ZCOUNT', repeats, at - flood_ms, at)
  if repeated > 1 then
    redis.call('ZREMRANGEBYSCORE', repeats, '-inf', at - flood_ms)
  end
  local sending = 0
  -- Only texts that could make a wave are followed (most chat is short): fewer calls.
  if ARGV[7 + 4 * i] == '1' then
    redis.call('ZADD', senders, at, user)
    redis.call('ZREMRANGEBYSCORE', senders, '-inf', at - wave_ms)
    redis.call('PEXPIRE', senders, wave_ms)
    sending = redis.call('ZCOUNT', senders, at - wave_ms, at)
  end
  local slowed = 0
  if slow_ms > 0 and not redis.call('SET', slow, key, 'NX', 'PX', slow_ms) then
    if redis.call('GET', slow) ~= key then slowed = 1 end
  end
  table.insert(out, muted)
  table.insert(out, repeated)
  table.insert(out, sending)
  table.insert(out, slowed)
end
return out
"""


@dataclass(frozen=True, slots=True)
class Seen:
    at_ms: int
    user: str
    key: str  # the event's stable key
    text_hash: str
    wave_candidate: bool


class Sightings:
    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(_SIGHT)

    async def record(self, room: str, messages: Sequence[Seen], slow_mode_s: int) -> list[Sighting]:
        if not messages:
            return []
        keys = RoomKeys(room)
        script_keys = [keys.mutes]
        args: list[str | int] = [FLOOD_WINDOW_MS, WAVE_WINDOW_MS, slow_mode_s * 1000]
        for seen in messages:
            script_keys += (
                keys.repeats(seen.user, seen.text_hash),
                keys.senders(seen.text_hash),
                keys.slow_mode(seen.user),
            )
            args += (seen.at_ms, seen.user, seen.key, int(seen.wave_candidate))
        flat = await self._script(keys=script_keys, args=args)
        return [
            Sighting(
                muted_until=int(flat[i]),
                repeats=int(flat[i + 1]),
                senders=int(flat[i + 2]),
                slowed=bool(flat[i + 3]),
            )
            for i in range(0, len(flat), 4)
        ]
