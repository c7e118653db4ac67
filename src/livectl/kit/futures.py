"""One call shared by the callers that want it at the same time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K")


class SingleFlight(Generic[K, T]):
    """Calls for a key made while one is running share its answer instead of each making
    their own: a thousand sockets finding a cached record stale in the same second make one
    Redis read, not a thousand (each borrowing a pool connection)."""

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[T]] = {}

    async def run(self, key: K, call: Callable[[], Awaitable[T]]) -> T:
        running = self._running.get(key)
        if running is None:
            running = self._running[key] = asyncio.ensure_future(call())
            running.add_done_callback(lambda _: self._running.pop(key, None))
        # Shielded: one caller giving up (its socket closed) must not cancel the others' answer.
        return await asyncio.shield(running)
