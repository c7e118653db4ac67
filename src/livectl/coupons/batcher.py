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

from redis.exceptions import RedisError

from livectl.coupons.claims import ClaimRequest, CouponScripts
from livectl.coupons.rules import claim_outcome
from livectl.coupons.schemas import ClaimOut
from livectl.errors import LivectlError, ServiceUnavailable
from livectl.kit.clock import now_ms

log = logging.getLogger("livectl.coupons")

ClaimAnswer = ClaimOut | LivectlError

# A bigger batch holds Redis longer in one script: other rooms' commands wait behind it.
_MAX_BATCH = 2000


class ClaimBatcher:
    def __init__(self, scripts: CouponScripts, *, window_s: float = 0.001) -> None:
        self._scripts = scripts
        self._window_s = window_s
        self._pending: dict[str, list[tuple[ClaimRequest, asyncio.Future[ClaimAnswer]]]] = (
            defaultdict(list)
        )
        self._flushing: set[asyncio.Task[None]] = set()

    async def claim(self, room: str, requests: Sequence[ClaimRequest]) -> list[ClaimAnswer]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in requests]
        pending = self._pending[room]
        if not pending:
            loop.call_later(self._window_s, self._start_flush, room)
        pending.extend(zip(requests, futures, strict=True))
        return list(await asyncio.gather(*futures))

    def _start_flush(self, room: str) -> None:
        batch = self._pending.pop(room, [])
        for start in range(0, len(batch), _MAX_BATCH):
            task = asyncio.create_task(self._flush(room, batch[start : start + _MAX_BATCH]))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    async def _flush(
        self, room: str, batch: list[tuple[ClaimRequest, asyncio.Future[ClaimAnswer]]]
    ) -> None:
        try:
            replies = await self._scripts.claim(room, [request for request, _ in batch], now_ms())
        except Exception as exc:
            # Every caller must get an answer, whatever went wrong: none may wait forever.
            if not isinstance(exc, RedisError):
                log.exception("claim batch for room %s failed", room)
            unavailable = ServiceUnavailable("the coupon store is unavailable; retry shortly")
            for _, future in batch:
                if not future.done():
                    future.set_result(unavailable)
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if not future.done():
                future.set_result(claim_outcome(reply))

    async def close(self) -> None:
        if self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)
