"""Appending messages to a room's outbound channel, numbered by ``seq``.

One Lua call numbers a whole batch of messages, builds each envelope once (fan-out then sends
the stored text as is) and trims history. The entry id is ``{seq}-0`` so a console resuming
``since=S`` is one XRANGE away from its next message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from livectl.bus.keys import Channel, RoomKeys
from livectl.bus.scripts import ScriptCall, run_many
from livectl.config import Settings
from livectl.kit import codec
from livectl.kit.clock import now_ms

# KEYS: stream, seq counter, clock (zset of the first seq of each second, scored by second),
#       optionally a marker that makes the call happen once
# ARGV: now_ms, history_min, history_ms, history_max, marker ttl ms, then (type, data,
#       staff-only flag) triples; a staff-only entry carries s=1 so fan-out can skip it for
#       host views without parsing the envelope
_PUBLISH = """
if KEYS[4] and not redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[5]) then
  return -1
end
local now = ARGV[1]
local count = (#ARGV - 5) / 3
local last = redis.call('INCRBY', KEYS[2], count)
local seq = last - count
for i = 6, #ARGV, 3 do
  seq = seq + 1
  local frame = '{"seq":' .. seq .. ',"type":"' .. ARGV[i] .. '","ts":' .. now ..
                ',"data":' .. ARGV[i + 1] .. '}'
  if ARGV[i + 2] == '1' then
    redis.call('XADD', KEYS[1], seq .. '-0', 'f', frame, 's', '1')
  else
    redis.call('XADD', KEYS[1], seq .. '-0', 'f', frame)
  end
end
local second = math.floor(tonumber(now) / 1000)
if #redis.call('ZRANGEBYSCORE', KEYS[3], second, second, 'LIMIT', 0, 1) == 0 then
  redis.call('ZADD', KEYS[3], second, last - count + 1)
end
-- Trim about every 100 messages: keep what is younger than history_ms or among the last
-- history_min, never more than history_max.
if math.floor(last / 100) ~= math.floor((last - count) / 100) then
  local keep_from = last - tonumber(ARGV[2]) + 1
  local cutoff = math.floor((tonumber(now) - tonumber(ARGV[3])) / 1000)
  local young = redis.call('ZRANGEBYSCORE', KEYS[3], cutoff, '+inf', 'LIMIT', 0, 1)
  if #young > 0 and tonumber(young[1]) < keep_from then keep_from = tonumber(young[1]) end
  local floor = last - tonumber(ARGV[4]) + 1
  if keep_from < floor then keep_from = floor end
  if keep_from > 1 then
    redis.call('XTRIM', KEYS[1], 'MINID', '~', keep_from .. '-0')
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', cutoff - 1)
  end
end
return last
"""


# A redelivered stream entry comes back within minutes (reclaim idle time times the retry
# cap); markers live far longer than that and then expire on their own.
_ONCE_TTL_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class Message:
    type: str
    data: Any
    # For assistants and up only (a hidden chat message): never sent to a host view.
    staff_only: bool = False


class Publisher:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings
        self._script = redis.register_script(_PUBLISH)

    async def publish(
        self,
        room: str,
        messages: Sequence[Message],
        channels: Iterable[Channel] = (Channel.CONSOLE,),
    ) -> None:
        if not messages:
            return
        args = self._args(messages)
        for channel in channels:
            await self._script(keys=self._keys(room, channel), args=args)

    async def publish_once(
        self,
        room: str,
        batches: Sequence[tuple[str, Sequence[Message]]],
        channel: Channel = Channel.CONSOLE,
    ) -> None:
        """Publish each (token, messages) batch unless a batch with that token already was:
        how a worker stays exactly-once on the console when its stream entries are redelivered."""
        keys = self._keys(room, channel)
        calls: list[ScriptCall] = [
            ([*keys, RoomKeys(room).once(f"{channel.value}:{token}")], self._args(messages))
            for token, messages in batches
            if messages
        ]
        for result in await run_many(self._redis, self._script, calls):
            if isinstance(result, Exception):
                raise result

    def _keys(self, room: str, channel: Channel) -> list[str]:
        keys = RoomKeys(room)
        return [keys.channel(channel), keys.channel_seq(channel), keys.channel_clock(channel)]

    def _args(self, messages: Sequence[Message]) -> list[str | bytes | int]:
        args: list[str | bytes | int] = [
            now_ms(),
            self._settings.history_min,
            self._settings.history_ms,
            self._settings.history_max,
            _ONCE_TTL_MS,
        ]
        for message in messages:
            args += (message.type, codec.dumps(message.data), int(message.staff_only))
        return args


def seq_of(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])
