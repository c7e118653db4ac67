"""Coalescing claims: every claim that arrives within about a millisecond, from REST calls and
claim sockets alike, is decided by one Lua call per room, and each caller gets its own answer.

One call per claim would cap a gateway process near the Redis round trips it can make; one
call per batch decides thousands. Only in-flight requests are held here, never room state.
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
    def __init__(
        self, scripts: CouponScripts, *, attempts_per_user_per_s: int, window_s: float = 0.001
    ) -> None:
        self._scripts = scripts
        self._attempts_per_user_per_s = attempts_per_user_per_s
        self._window_s = window_s
        # Per room, the callers waiting for the next flush: their requests and one future each.
        self._pending: dict[str, list[_Waiting]] = defaultdict(list)
        self._flushing: set[asyncio.Task[None]] = set()

    async def claim(self, room: str, requests: Sequence[ClaimRequest]) -> list[ClaimAnswer]:
        loop = asyncio.get_running_loop()
        waiting = _Waiting(requests, loop.create_future())
        pending = self._pending[room]
        if not pending:
            loop.call_later(self._window_s, self._start_flush, room)
        pending.append(waiting)
        return await waiting.answers

    def _start_flush(self, room: str) -> None:
        callers = self._pending.pop(room, [])
        batch: list[_Waiting] = []
        size = 0
        for waiting in callers:
            if batch and size + len(waiting.requests) > _MAX_BATCH:
                self._spawn(room, batch)
                batch, size = [], 0
            batch.append(waiting)
            size += len(waiting.requests)
        if batch:
            self._spawn(room, batch)

    def _spawn(self, room: str, batch: list[_Waiting]) -> None:
        task = asyncio.create_task(self._flush(room, batch))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

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
        if self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)


@dataclass(frozen=True, slots=True)
class _Waiting:
    requests: Sequence[ClaimRequest]
    answers: asyncio.Future[list[ClaimAnswer]]
