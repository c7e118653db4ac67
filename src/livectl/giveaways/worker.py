"""The giveaways consumer group: entries from the room's events; the tick draws on time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from itertools import chain

from livectl.bus.consumer import Entry
from livectl.giveaways.service import GROUP, GiveawayService
from livectl.ingest.entries import unpack_entry
from livectl.resources import Resources

__all__ = ["GROUP", "GiveawayEntries", "GiveawayRecovery"]

log = logging.getLogger("livectl.giveaways")

# How often a worker checks that Redis still knows every giveaway not yet drawn.
RECOVER_EVERY_S = 10.0


class GiveawayEntries:
    def __init__(self, resources: Resources) -> None:
        self._service = GiveawayService(resources)

    async def handle(self, room: str, entries: Sequence[Entry]) -> None:
        await self._service.record_entries(
            room, chain.from_iterable(unpack_entry(e.id, e.fields) for e in entries)
        )


class GiveawayRecovery:
    """Every ``RECOVER_EVERY_S``: giveaways not yet drawn go back into Redis if it lost them."""

    def __init__(self, resources: Resources) -> None:
        self._service = GiveawayService(resources)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._service.recover()
            except Exception:
                log.exception("giveaway recovery failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RECOVER_EVERY_S)
