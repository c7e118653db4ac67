"""Coalescing claims: the claims that arrive while a room's last Lua call is out, from REST
calls and claim sockets alike, are decided by the next single call, and each caller gets its own
answer.

One call per claim would cap a gateway process near the Redis round trips it can make; one
call per batch decides thousands. A quiet room's claim goes out at once, with no window to wait
out: batches grow only as fast as claims arrive during a round trip. Only in-flight requests are
held here, never room state.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from redis.exceptions import RedisError

from livectl.coupons.claims import ClaimRequest, CouponScripts
from livectl.coupons.rules import claim_outcome
from livectl.coupons.schemas import ClaimOut
from livectl.errors import LivectlError, ServiceUnavailable
from livectl.kit.clock import now_ms

log = logging.getLogger("livectl.coupons")

ClaimAnswer = ClaimOut | LivectlError

# A bigger batch holds Redis longer in one script: other rooms' commands wait behind it.
# (A single caller's frame of up to 1000 claims is never split.)
_MAX_BATCH = 2000


class ClaimBatcher:
    def __init__(self, scripts: CouponScripts, *, attempts_per_user_per_s: int) -> None:
        self._scripts = scripts
        self._attempts_per_user_per_s = attempts_per_user_per_s
        # Per room, the callers waiting for the next call: their requests and one future each.
        self._pending: dict[str, list[_Waiting]] = defaultdict(list)
        # Per room with claims out or waiting, the task that sends them, one call after another.
        self._senders: dict[str, asyncio.Task[None]] = {}

    async def claim(self, room: str, requests: Sequence[ClaimRequest]) -> list[ClaimAnswer]:
        waiting = _Waiting(requests, asyncio.get_running_loop().create_future())
        self._pending[room].append(waiting)
        if room not in self._senders:
            # The task's first step runs after the callbacks already due: the claims read from
            # sockets in this same pass of the event loop go out with this one.
            self._senders[room] = asyncio.create_task(self._send(room))
        return await waiting.answers

    async def _send(self, room: str) -> None:
        try:
            while callers := self._pending.pop(room, None):
                await asyncio.gather(*(self._flush(room, batch) for batch in _batches(callers)))
        finally:
            # No await between the last empty look and this: a claim arriving later starts a
            # new sender.
            del self._senders[room]

    async def _flush(self, room: str, batch: list[_Waiting]) -> None:
        requests = [request for waiting in batch for request in waiting.requests]
        try:
            answers = await self._decide(room, requests)
        except Exception as exc:
            # Every caller must get an answer, whatever went wrong: none may wait forever.
            if not isinstance(exc, RedisError):
                log.exception("claim batch for room %s failed", room)
            unavailable = ServiceUnavailable("the coupon store is unavailable; retry shortly")
            for waiting in batch:
                if not waiting.answers.done():
                    waiting.answers.set_result([unavailable] * len(waiting.requests))
            return
        start = 0
        for waiting in batch:
            end = start + len(waiting.requests)
            if not waiting.answers.done():  # a caller that went away is simply skipped
                waiting.answers.set_result(answers[start:end])
            start = end

    async def _decide(self, room: str, requests: list[ClaimRequest]) -> list[ClaimAnswer]:
        replies = await self._scripts.claim(
            room, requests, now_ms(), attempts_per_user_per_s=self._attempts_per_user_per_s
        )
        return [claim_outcome(reply) for reply in replies]

    async def close(self) -> None:
        if self._senders:
            await asyncio.gather(*self._senders.values(), return_exceptions=True)


def _batches(callers: list[_Waiting]) -> list[list[_Waiting]]:
    """Callers in order, cut into batches of up to ``_MAX_BATCH`` claims (a caller's own frame is
    never cut)."""
    batches: list[list[_Waiting]] = []
    batch: list[_Waiting] = []
    size = 0
    for waiting in callers:
        if batch and size + len(waiting.requests) > _MAX_BATCH:
            batches.append(batch)
            batch, size = [], 0
        batch.append(waiting)
        size += len(waiting.requests)
    if batch:
        batches.append(batch)
    return batches


@dataclass(frozen=True, slots=True)
class _Waiting:
    requests: Sequence[ClaimRequest]
    answers: asyncio.Future[list[ClaimAnswer]]
