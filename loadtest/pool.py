"""Client processes that start together: the parent's pool and the jobs' side of the start.

Every job connects first, then reports ready and waits for a common start instant that the
parent sets once all jobs are ready, so several processes measure the same window. Times are
wall-clock (``time.time``) because they are compared across processes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as EventType
from types import TracebackType
from typing import Any, Protocol, TypeVar

from loadtest import wire

T = TypeVar("T")


@dataclass(frozen=True)
class _Signals:
    ready: Synchronized[int]  # jobs connected and waiting
    go_at: Synchronized[float]  # the start instant, valid once `go` is set
    go: EventType


# Set in each client process by the pool initializer.
_signals: _Signals | None = None

# Concurrent handshakes per client process: enough to open 1,000 sockets in about a second
# without overrunning the gateway's accept backlog.
_CONNECT_CONCURRENCY = 100
# Margin between "everyone is ready" and the start, so every process sees the go in time.
_START_MARGIN_S = 0.2

Job = tuple[Callable[[Any], object], object]


class ClientPool:
    """Spawned processes (fresh interpreters: nothing of the parent's servers leaks in)."""

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._signals = _Signals(context.Value("i", 0), context.Value("d", 0.0), context.Event())
        self._pool = context.Pool(processes, initializer=_install, initargs=(self._signals,))

    def launch(self, jobs: Sequence[Job], *, ready_timeout_s: float) -> Launch:
        """Start the jobs; return once every one of them is connected and waiting for go."""
        self._signals.ready.value = 0
        self._signals.go.clear()
        pending = [self._pool.apply_async(function, (spec,)) for function, spec in jobs]
        deadline = time.monotonic() + ready_timeout_s
        while self._signals.ready.value < len(jobs):
            for job in pending:
                if job.ready():
                    job.get()  # a job that ends before the start failed: raise its error here
            if time.monotonic() > deadline:
                raise TimeoutError(f"client jobs not connected within {ready_timeout_s:.0f} s")
            time.sleep(0.02)
        return Launch(self._signals, pending)

    def pids(self) -> list[int]:
        """The client processes: the pool's workers are this process's only children made by
        multiprocessing (the servers are started with subprocess)."""
        return [child.pid for child in multiprocessing.active_children() if child.pid]

    def __enter__(self) -> ClientPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pool.terminate()
        self._pool.join()


class Launch:
    def __init__(self, signals: _Signals, pending: list[AsyncResult[Any]]) -> None:
        self._signals = signals
        self._pending = pending

    def go(self) -> float:
        """Set the common start instant, just ahead so every process sees it in time."""
        go = time.time() + _START_MARGIN_S
        self._signals.go_at.value = go
        self._signals.go.set()
        return go

    def done(self) -> bool:
        return all(job.ready() for job in self._pending)

    def results(self, timeout_s: float) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        return [job.get(max(0.0, deadline - time.monotonic())) for job in self._pending]


def _install(signals: _Signals) -> None:
    global _signals  # noqa: PLW0603 (one pool per process, set once at its start)
    _signals = signals


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop  # noqa: PLC0415 (optional: uvicorn[standard] brings it except on Windows)
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a job's coroutine on uvloop when available (what the gateway runs on too)."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(main)


async def ready_then_go() -> float:
    """Tell the parent this job is connected; return the start instant once it is reached."""
    signals = _signals
    assert signals is not None, "jobs run only in a ClientPool"
    with signals.ready.get_lock():
        signals.ready.value += 1
    await asyncio.to_thread(signals.go.wait)
    go = signals.go_at.value
    await sleep_until(go)
    return go


async def sleep_until(instant: float) -> None:
    await asyncio.sleep(max(0.0, instant - time.time()))


async def connect_all(
    host: str,
    port: int,
    paths: Sequence[str],
    handlers: Sequence[wire.MessageHandler],
    *,
    receive_buffer: int | None = None,
) -> list[wire.WsClient]:
    gate = asyncio.Semaphore(_CONNECT_CONCURRENCY)

    async def one(path: str, handler: wire.MessageHandler) -> wire.WsClient:
        async with gate:
            return await wire.connect(host, port, path, handler, receive_buffer=receive_buffer)

    return list(await asyncio.gather(*(one(p, h) for p, h in zip(paths, handlers, strict=True))))


class Answered(Protocol):
    """What a load connection's answers go to: socket frames or HTTP responses."""

    def on_frame(self, body: bytes) -> None: ...

    def on_response(self, status: int, body: bytes) -> None: ...


async def connect_each(
    host: str, port: int, path: str, answered: Sequence[Answered], *, rest: bool
) -> list[wire.HttpClient | wire.WsClient]:
    """One connection for each: keep-alive HTTP (``rest``), else a socket on ``path``."""
    if rest:
        return list(
            await asyncio.gather(*(wire.connect_http(host, port, a.on_response) for a in answered))
        )
    handlers = [a.on_frame for a in answered]
    return list(await connect_all(host, port, [path] * len(answered), handlers))
