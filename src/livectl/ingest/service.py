from __future__ import annotations

import time

from redis.exceptions import RedisError

from livectl import metrics
from livectl.errors import ServiceUnavailable
from livectl.ingest.appender import Appender
from livectl.ingest.schemas import IngestResult
from livectl.ingest.validation import parse_batch
from livectl.kit.clock import now_ms
from livectl.resources import Resources
from livectl.rooms.rules import RoomEnded
from livectl.rooms.service import RoomCache

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
        self.appender = Appender(resources.redis, resources.settings)

    async def ingest(self, room: str, raw: bytes | str) -> IngestResult:
        batch = parse_batch(raw, max_events=self._settings.max_batch_events)
        try:
            await self._check_open(room)
            duplicates = await self.appender.append(room, batch)
        except RedisError as exc:
            raise ServiceUnavailable("the event store is unavailable; retry shortly") from exc
        accepted = len(batch.events) - duplicates
        metrics.EVENTS_ACCEPTED.inc(accepted)
        metrics.EVENTS_DUPLICATE.inc(duplicates)
        metrics.EVENTS_REJECTED.inc(len(batch.rejected))
        return IngestResult(accepted=accepted, duplicates=duplicates, rejected=batch.rejected)

    async def _check_open(self, room: str) -> None:
        """RoomNotFound for rooms never created; RoomEnded past the grace after the end."""
        looked = self._looked_at.get(room)
        if looked is None or (looked[1] is None and time.monotonic() - looked[0] > _RECHECK_S):
            state = await self._rooms.state(room)
            looked = self._looked_at[room] = (time.monotonic(), state.room.ended_at)
        ended_at = looked[1]
        if ended_at is not None and now_ms() >= ended_at + self._settings.ended_room_grace_ms:
            raise RoomEnded("this live ended; its room takes no more events")
