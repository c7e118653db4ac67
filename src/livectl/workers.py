"""``livectl worker``: every concern's consumer group, in one process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from livectl.archive.worker import GROUP as ARCHIVE
from livectl.archive.worker import Archiver
from livectl.bus.consumer import Handler, StreamConsumer, consumer_name
from livectl.bus.tick import RoomTicker, TickHandler
from livectl.config import Settings
from livectl.console.worker import GROUP as CONSOLE_RELAY
from livectl.console.worker import ConsoleRelay
from livectl.opinion.worker import GROUP as OPINION
from livectl.opinion.worker import OpinionTick, OpinionWorker
from livectl.resources import Resources, open_resources

log = logging.getLogger("livectl.worker")

# Each concern is a consumer group over every room's event stream.
CONCERNS: dict[str, Callable[[Resources], Handler]] = {
    ARCHIVE: lambda resources: Archiver(resources.sessionmaker).handle,
    CONSOLE_RELAY: lambda resources: ConsoleRelay(resources).handle,
    OPINION: lambda resources: OpinionWorker(resources).handle,
}

# Run on every live room once a second, by whichever worker holds that room's tick lease.
TICKS: list[Callable[[Resources], TickHandler]] = [
    lambda resources: OpinionTick(resources).tick,
]


async def run_workers(settings: Settings, groups: Sequence[str], stop: asyncio.Event) -> None:
    unknown = set(groups) - CONCERNS.keys()
    if unknown:
        raise ValueError(f"unknown worker groups {sorted(unknown)}; known: {sorted(CONCERNS)}")
    async with open_resources(settings) as resources:
        name = consumer_name()
        consumers = [
            StreamConsumer(
                resources.redis,
                settings,
                group=group,
                handler=CONCERNS[group](resources),
                name=name,
            )
            for group in groups
        ]
        ticker = RoomTicker(resources.redis, [make(resources) for make in TICKS], holder=name)
        log.info("worker %s running %s", name, ", ".join(groups))
        await asyncio.gather(*(consumer.run(stop) for consumer in consumers), ticker.run(stop))
        log.info("worker %s stopped", name)
