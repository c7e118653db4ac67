"""SingleFlight: callers arriving while a call for their key runs share it (pure unit)."""

from __future__ import annotations

import asyncio

import pytest

from livectl.kit.futures import SingleFlight


class _Lookup:
    """Counts the calls that really ran; each waits until released."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self, answer: str) -> str:
        self.calls += 1
        await self.release.wait()
        if answer == "boom":
            raise LookupError(answer)
        return answer


async def test_concurrent_callers_of_one_key_share_one_call() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    lookup = _Lookup()
    waiting = [asyncio.create_task(flight.run("room", lambda: lookup("a"))) for _ in range(100)]
    other = asyncio.create_task(flight.run("other", lambda: lookup("b")))
    await asyncio.sleep(0)
    lookup.release.set()
    assert await asyncio.gather(*waiting) == ["a"] * 100
    assert await other == "b"
    assert lookup.calls == 2


async def test_a_finished_call_is_not_reused() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    lookup = _Lookup()
    lookup.release.set()
    assert await flight.run("room", lambda: lookup("first")) == "first"
    assert await flight.run("room", lambda: lookup("second")) == "second"
    assert lookup.calls == 2


async def test_every_caller_hears_the_failure_and_the_next_call_runs_again() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    lookup = _Lookup()
    waiting = [asyncio.create_task(flight.run("room", lambda: lookup("boom"))) for _ in range(3)]
    await asyncio.sleep(0)
    lookup.release.set()
    for outcome in await asyncio.gather(*waiting, return_exceptions=True):
        assert isinstance(outcome, LookupError)
    assert await flight.run("room", lambda: lookup("again")) == "again"
    assert lookup.calls == 2


async def test_a_caller_giving_up_does_not_cancel_the_others() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    lookup = _Lookup()
    first = asyncio.create_task(flight.run("room", lambda: lookup("a")))
    second = asyncio.create_task(flight.run("room", lambda: lookup("a")))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    lookup.release.set()
    assert await second == "a"
    assert lookup.calls == 1
