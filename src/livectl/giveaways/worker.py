"""The giveaways consumer group: entries from the room's events; the tick draws on time."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

from livectl.bus.consumer import Entry
from livectl.giveaways.service import GROUP, GiveawayService
from livectl.ingest.entries import unpack_entry
from livectl.resources import Resources

__all__ = ["GROUP", "GiveawayEntries"]


class GiveawayEntries:
    def __init__(self, resources: Resources) -> None:
        self._service = GiveawayService(resources)

    async def handle(self, room: str, entries: Sequence[Entry]) -> None:
        await self._service.record_entries(
            room, chain.from_iterable(unpack_entry(e.id, e.fields) for e in entries)
        )
