from __future__ import annotations

from redis.exceptions import RedisError

from livectl import metrics
from livectl.errors import ServiceUnavailable
from livectl.ingest.appender import Appender
from livectl.ingest.schemas import IngestResult
from livectl.ingest.validation import parse_batch
from livectl.resources import Resources
from livectl.rooms.service import RoomCache


class IngestService:
    """Validate, dedupe and append; one per gateway process (it owns the batching appender)."""

    def __init__(self, resources: Resources) -> None:
        self._settings = resources.settings
        self._rooms = RoomCache(resources)
        self._known_rooms: set[str] = set()
        self.appender = Appender(resources.redis, resources.settings)

    async def ingest(self, room: str, raw: bytes | str) -> IngestResult:
        batch = parse_batch(raw, max_events=self._settings.max_batch_events)
        try:
            if room not in self._known_rooms:
                await self._rooms.state(room)  # RoomNotFound for rooms never created
                self._known_rooms.add(room)
            duplicates = await self.appender.append(room, batch)
        except RedisError as exc:
            raise ServiceUnavailable("the event store is unavailable; retry shortly") from exc
        accepted = len(batch.events) - duplicates
        metrics.EVENTS_ACCEPTED.inc(accepted)
        metrics.EVENTS_DUPLICATE.inc(duplicates)
        metrics.EVENTS_REJECTED.inc(len(batch.rejected))
        return IngestResult(accepted=accepted, duplicates=duplicates, rejected=batch.rejected)
