"""Futures on hot paths: chained with callbacks (cheaper than a task where it runs once per
frame), and one call shared by the callers that want it at the same time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
U = TypeVar("U")
K = TypeVar("K")


def then(
    future: asyncio.Future[T],
    make: Callable[[T], U],
    on_error: Callable[[BaseException], BaseException] = lambda exc: exc,
) -> asyncio.Future[U]:
    """A future of ``make(result)`` once ``future`` is done, or of its exception (as
    ``on_error`` turns it)."""
    chained: asyncio.Future[U] = asyncio.get_running_loop().create_future()

    def settle(done: asyncio.Future[T]) -> None:
        if done.cancelled():
            chained.cancel()
        elif (exc := done.exception()) is not None:
            chained.set_exception(on_error(exc))
        else:
            chained.set_result(make(done.result()))

    future.add_done_callback(settle)
    return chained


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
