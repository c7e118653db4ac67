"""``livectl worker``: every concern's consumer group, in one process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from livectl import metrics
from livectl.archive.worker import GROUP as ARCHIVE
from livectl.archive.worker import Archiver
from livectl.bus.consumer import Handler, StreamConsumer, StreamOf, consumer_name, events_stream
from livectl.bus.keys import RoomKeys
from livectl.bus.tick import RoomTicker, TickHandler
from livectl.config import Settings
from livectl.console.worker import GROUP as CONSOLE_RELAY
from livectl.console.worker import ConsoleRelay
from livectl.coupons.worker import EVENTS_GROUP as COUPON_EVENTS
from livectl.coupons.worker import LEDGER_GROUP as COUPON_LEDGER
from livectl.coupons.worker import CouponEvents, CouponReconciler, CouponTicker, LedgerWriter
from livectl.giveaways.service import GiveawayService
from livectl.giveaways.worker import GROUP as GIVEAWAYS
from livectl.giveaways.worker import GiveawayEntries, GiveawayRecovery
from livectl.kit.heap import freeze_startup_heap
from livectl.opinion.worker import GROUP as OPINION
from livectl.opinion.worker import OpinionTick, OpinionWorker
from livectl.ranking.service import RankingService
from livectl.ranking.worker import GROUP as RANKING
from livectl.ranking.worker import RankingWorker
from livectl.resources import Resources, open_resources
from livectl.rules.worker import GROUP as RULES
from livectl.rules.worker import RulesTick, RulesWorker
from livectl.stats.counting import EntryCounts
from livectl.stats.service import StatsService
from livectl.stats.worker import GROUP as STATS
from livectl.stats.worker import StatsWorker

log = logging.getLogger("livectl.worker")

# Net container allocations between two passes of the cyclic collector over its young
# generation (CPython's default: 700; the gateway's is in livectl.app). A worker parses entries
# of up to 1,000 events, and its groups hold up to 16 such entries at once; at the default a
# pass ran every few hundred events, walked the ones still alive and moved them to the older
# generations, whose passes walked them again. Stats and ranking handled 130,000-148,000 events
# per worker CPU-second at the default and 190,000-203,000 at 100,000 (stats-lag bench,
# interleaved runs, before they shared their counting). Parsed events are freed by reference
# counting; this only delays looking for cycles.
_YOUNG_CONTAINERS = 100_000


@dataclass(frozen=True, slots=True)
class WorkerProcess:
    """What the consumer groups of one process share."""

    resources: Resources
    # Stats and ranking count each entry once between them when both run here.
    counts: EntryCounts


# Each concern is a consumer group over every room's event stream.
CONCERNS: dict[str, Callable[[WorkerProcess], Handler]] = {
    ARCHIVE: lambda process: Archiver(process.resources.sessionmaker).handle,
    CONSOLE_RELAY: lambda process: ConsoleRelay(process.resources).handle,
    STATS: lambda process: StatsWorker(process.resources, process.counts).handle,
    RANKING: lambda process: RankingWorker(process.resources, process.counts).handle,
    COUPON_EVENTS: lambda process: CouponEvents(process.resources).handle,
    COUPON_LEDGER: lambda process: LedgerWriter(process.resources).handle,
    OPINION: lambda process: OpinionWorker(process.resources).handle,
    RULES: lambda process: RulesWorker(process.resources).handle,
    GIVEAWAYS: lambda process: GiveawayEntries(process.resources).handle,
}
# The groups that count each entry's effect on the room's figures (see stats/counting).
COUNTING_GROUPS = frozenset({STATS, RANKING})

# Groups that follow another stream of each room than its events.
STREAMS: dict[str, StreamOf] = {
    COUPON_LEDGER: lambda room: RoomKeys(room).coupon_outbox,
}

# Run on every live room once a second, by the worker that holds the room's lease for that
# concern, in processes that run the concern's group.
TICKS: dict[str, list[Callable[[Resources], TickHandler]]] = {
    STATS: [lambda resources: StatsService(resources).tick],
    RANKING: [lambda resources: RankingService(resources).tick],
    COUPON_EVENTS: [lambda resources: CouponTicker(resources).tick],
    OPINION: [lambda resources: OpinionTick(resources).tick],
    RULES: [lambda resources: RulesTick(resources).tick],
    GIVEAWAYS: [lambda resources: GiveawayService(resources).tick],
}

# Run for as long as the process runs, until ``stop`` is set, in processes that run the group.
SUPERVISORS: dict[str, list[Callable[[Resources], Callable[[asyncio.Event], Awaitable[None]]]]] = {
    COUPON_LEDGER: [lambda resources: CouponReconciler(resources).run],
    GIVEAWAYS: [lambda resources: GiveawayRecovery(resources).run],
}

# Latency-bound: read as soon as entries land (the others linger), and `livectl up` gives them
# a process of their own, so a chat never waits for the bulk work (archive, stats, ranking,
# opinion) of the same batch.
LATENCY_GROUPS = (CONSOLE_RELAY,)

# Groups whose effects a user sees in stream order (chat on the console): one consumer at a
# time follows each room (see bus/consumer).
ORDERED_GROUPS = (CONSOLE_RELAY,)


async def run_workers(settings: Settings, groups: Sequence[str], stop: asyncio.Event) -> None:
    unknown = set(groups) - CONCERNS.keys()
    if unknown:
        raise ValueError(f"unknown worker groups {sorted(unknown)}; known: {sorted(CONCERNS)}")
    async with open_resources(settings) as resources:
        name = consumer_name()
        process = WorkerProcess(resources, EntryCounts(sharers=len(COUNTING_GROUPS & {*groups})))
        consumers = [
            StreamConsumer(
                resources.redis,
                settings,
                group=group,
                handler=CONCERNS[group](process),
                name=name,
                stream_of=STREAMS.get(group, events_stream),
                ordered=group in ORDERED_GROUPS,
                linger_ms=0 if group in LATENCY_GROUPS else settings.worker_linger_ms,
            )
            for group in groups
        ]
        ticker = RoomTicker(
            resources.redis,
            {
                group: [make(resources) for make in TICKS[group]]
                for group in groups
                if group in TICKS
            },
            holder=name,
        )
        supervisors = [make(resources) for group in groups for make in SUPERVISORS.get(group, [])]
        freeze_startup_heap(young_containers=_YOUNG_CONTAINERS)
        metrics.time_collector_pauses()
        log.info("worker %s running %s", name, ", ".join(groups))
        await asyncio.gather(
            *(consumer.run(stop) for consumer in consumers),
            ticker.run(stop),
            *(supervise(stop) for supervise in supervisors),
        )
        log.info("worker %s stopped", name)
