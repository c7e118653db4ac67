from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import RedisError

from livectl import metrics
from livectl.ingest.appender import Answer, Appender, store_unavailable
from livectl.ingest.schemas import IngestResult
from livectl.ingest.validation import ParsedBatch, parse_batch
from livectl.kit.clock import now_ms
from livectl.kit.futures import SingleFlight
from livectl.resources import Resources
from livectl.rooms.rules import RoomEnded
from livectl.rooms.service import RoomCache

# Raises (RateLimited) when a batch of this many events may not be taken.
Admit = Callable[[int], Awaitable[None]]
# The same with no wait: False, having counted nothing, when deciding would need Redis.
AdmitNow = Callable[[int], bool]
T = TypeVar("T")

# How often a gateway looks again at a room it takes events for: an end reaches every gateway
# within this, without a Redis read per frame.
_RECHECK_S = 1.0


class IngestService:
    """Validate, dedupe and append; one per gateway process (it owns the batching appender)."""

    def __init__(self, resources: Resources) -> None:
        self._settings = resources.settings
        self._rooms = RoomCache(resources)
        # room -> (when it was looked at, monotonic; when its live ended, if it has)
        self._looked_at: dict[str, tuple[float, int | None]] = {}
        self._lookups: SingleFlight[str, tuple[float, int | None]] = SingleFlight()
        self.appender = Appender(resources.redis, resources.settings)

    async def ingest(self, room: str, raw: bytes | str, admit: Admit) -> IngestResult:
        return await (await self.submit(room, raw, admit, result_of))

    async def submit(
        self, room: str, raw: bytes | str, admit: Admit, answer: Answer[T]
    ) -> asyncio.Future[T]:
        """Validate the batch, let ``admit`` refuse it (rate limits, by its count of valid
        events) and queue it for storing, in call order; the future is ``answer`` of the
        batch and its duplicates once it is stored."""
        batch = parse_batch(raw, max_events=self._settings.max_batch_events)
        try:
            await admit(len(batch.events))
            looked = self._fresh_look(room) or await self._lookups.run(
                room, lambda: self._look_at(room)
            )
        except RedisError as exc:
            raise store_unavailable() from exc
        return self._append(room, batch, looked, answer)

    def submit_now(
        self,
        room: str,
        raw: bytes | str,
        admit_now: AdmitNow,
        answer: Answer[T],
    ) -> asyncio.Future[T] | None:
        """``submit`` with no wait, as a socket's frames mostly can be: None, having done
        nothing, when the room is due a fresh look or ``admit_now`` declines."""
        looked = self._fresh_look(room)
        if looked is None:
            return None
        batch = parse_batch(raw, max_events=self._settings.max_batch_events)
        if not admit_now(len(batch.events)):
            return None
        return self._append(room, batch, looked, answer)

    def _append(
        self,
        room: str,
        batch: ParsedBatch,
        looked: tuple[float, int | None],
        answer: Answer[T],
    ) -> asyncio.Future[T]:
        """RoomEnded past the grace after the room's end; else the batch queued to store."""
        ended_at = looked[1]
        if ended_at is not None and now_ms() >= ended_at + self._settings.ended_room_grace_ms:
            raise RoomEnded("this live ended; its room takes no more events")
        if batch.rejected:  # (the appender counts what it stores, per flush)
            metrics.EVENTS_REJECTED.inc(len(batch.rejected))
        return self.appender.submit(room, batch, answer)

    def _fresh_look(self, room: str) -> tuple[float, int | None] | None:
        """The room's record as last looked at, unless it is due another look (rooms never
        looked at, and live rooms every _RECHECK_S: an end reaches every gateway that soon)."""
        looked = self._looked_at.get(room)
        if looked is None or (looked[1] is None and time.monotonic() - looked[0] > _RECHECK_S):
            return None
        return looked

    async def _look_at(self, room: str) -> tuple[float, int | None]:
        state = await self._rooms.state(room)
        looked = self._looked_at[room] = (time.monotonic(), state.room.ended_at)
        return looked


def result_of(batch: ParsedBatch, duplicates: int) -> IngestResult:
    accepted = len(batch.events) - duplicates
    return IngestResult(accepted=accepted, duplicates=duplicates, rejected=batch.rejected)
