"""``livectl worker``: every concern's consumer group, in one process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from livectl.archive.worker import GROUP as ARCHIVE
from livectl.archive.worker import Archiver
from livectl.bus.consumer import Handler, StreamConsumer, consumer_name
from livectl.config import Settings
from livectl.console.worker import GROUP as CONSOLE_RELAY
from livectl.console.worker import ConsoleRelay
from livectl.resources import Resources, open_resources

log = logging.getLogger("livectl.worker")

CONCERNS: dict[str, Callable[[Resources], Handler]] = {
    ARCHIVE: lambda resources: Archiver(resources.sessionmaker).handle,
    CONSOLE_RELAY: lambda resources: ConsoleRelay(resources.publisher).handle,
}


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
        log.info("worker %s running %s", name, ", ".join(groups))
        await asyncio.gather(*(consumer.run(stop) for consumer in consumers))
        log.info("worker %s stopped", name)
