"""Limits shared by every gateway process, kept in Redis: events per second per token and open
sockets per token. One ``GatewayLimits`` per process. (Claim attempts per user per second are
counted by the claim script itself: see ``attempts``.)"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass

from redis.asyncio import Redis

from livectl.bus.keys import TokenKeys
from livectl.config import Settings
from livectl.errors import RateLimited

# A process adds what its sockets took to a token's shared count at most this often: a few
# Redis calls per second per token, whatever the frame rate. Other processes' share is seen
# up to this late, so a token may pass its limit by that much.
_SYNC_S = 0.05
# A socket's hold on its token's slot lapses this long after its process last renewed it, so
# the slots of a process that died free themselves.
_LEASE_MS = 60_000
_RENEW_S = 20.0

# KEYS[1]: the token's events in one second. ARGV: events already admitted by this process,
# a batch's events, the limit. Adds the first; adds the batch only if it fits. {total, 1|0}.
_COUNT_EVENTS = """
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], 2)
if total + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return {total, 0} end
return {redis.call('INCRBY', KEYS[1], ARGV[2]), 1}
"""

# KEYS[1]: the token's open sockets (member: socket id, score: lease end). ARGV: now ms, limit,
# lease end, socket id, key lifetime ms. 1 when the socket may open, 0 when the token is full.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""


def _refusal(limit: int) -> str:
    return f"this token may send {limit} events per second"


@dataclass(slots=True)
class _TokenSecond:
    """One token's events in one second: the shared total last read, and what this process
    admitted since it last added to it."""

    second: int
    shared: int = 0
    unsynced: int = 0
    synced_at: float = float("-inf")


class GatewayLimits:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._settings = settings
        self._acquire = redis.register_script(_ACQUIRE)
        self._count_events = redis.register_script(_COUNT_EVENTS)
        self._seconds: dict[str, _TokenSecond] = {}
        self._pruned_at = 0
        # The sockets this process holds slots for, per token, renewed together.
        self._leases: dict[str, set[str]] = defaultdict(set)
        self._renewer: asyncio.Task[None] | None = None

    def admit_events_now(self, token_id: str, count: int) -> bool:
        """Count ``count`` events against the token's per-second limit if that needs no Redis
        call; False, counting nothing, when this process is due to share its count first.
        RateLimited past the limit."""
        return self._due_to_share(token_id, count) is None

    async def admit_events(self, token_id: str, count: int) -> None:
        """Count ``count`` events against the token's per-second limit; RateLimited past it."""
        meter = self._due_to_share(token_id, count)
        if meter is None:
            return
        # Add what was admitted here since the last share, and decide this batch on the total.
        limit = self._settings.ingest_events_per_s_per_token
        adding, meter.unsynced = meter.unsynced, 0
        meter.synced_at = time.monotonic()
        total, admitted = await self._count_events(
            keys=[TokenKeys(token_id).events(meter.second)], args=[adding, count, limit]
        )
        meter.shared = max(meter.shared, int(total))
        if not admitted:
            raise RateLimited(_refusal(limit))

    def _due_to_share(self, token_id: str, count: int) -> _TokenSecond | None:
        """None once the events are counted here; the token's meter, nothing counted, when
        this process is due to share its count. RateLimited past the limit."""
        limit = self._settings.ingest_events_per_s_per_token
        if limit <= 0:
            return None
        second = int(time.time())
        meter = self._seconds.get(token_id)
        if meter is None or meter.second != second:
            self._prune(second)
            meter = self._seconds[token_id] = _TokenSecond(second)
        if meter.shared + meter.unsynced + count > limit:
            raise RateLimited(_refusal(limit))
        if time.monotonic() - meter.synced_at < _SYNC_S:
            meter.unsynced += count
            return None
        return meter

    def _prune(self, second: int) -> None:
        # Tokens that went quiet: at most once a second, drop their past seconds.
        if second != self._pruned_at:
            self._pruned_at = second
            self._seconds = {t: m for t, m in self._seconds.items() if m.second >= second - 1}

    async def take_socket_slot(self, token_id: str) -> str | None:
        """One of the token's open-socket slots, for the socket to hold while it lives (None
        when there is no such limit); RateLimited when the token already holds as many as it
        may, on any gateway process. Give it back with ``release_socket_slot``."""
        limit = self._settings.sockets_per_token
        if limit <= 0:
            return None
        slot = secrets.token_hex(8)
        now = int(time.time() * 1000)
        if not await self._acquire(
            keys=[TokenKeys(token_id).sockets],
            args=[now, limit, now + _LEASE_MS, slot, _LEASE_MS],
        ):
            raise RateLimited(f"this token may hold {limit} open sockets", retry_after_s=5)
        self._leases[token_id].add(slot)
        self._start_renewing()
        return slot

    async def release_socket_slot(self, token_id: str, slot: str | None) -> None:
        if slot is None:
            return
        self._leases[token_id].discard(slot)
        if not self._leases[token_id]:
            del self._leases[token_id]
        with contextlib.suppress(Exception):  # the lease lapses by itself if this fails
            await self._redis.zrem(TokenKeys(token_id).sockets, slot)

    def _start_renewing(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        while self._leases:
            await asyncio.sleep(_RENEW_S)
            until = int(time.time() * 1000) + _LEASE_MS
            with contextlib.suppress(Exception):  # Redis away: try again next round
                async with self._redis.pipeline(transaction=False) as pipe:
                    for token_id, sockets in self._leases.items():
                        if sockets:
                            key = TokenKeys(token_id).sockets
                            pipe.zadd(key, dict.fromkeys(sockets, until), xx=True)
                            pipe.pexpire(key, _LEASE_MS)
                    await pipe.execute()

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
