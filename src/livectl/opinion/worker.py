"""The opinion concern: tally chat per room (consumer group ``opinion``), and once a second
(the room tick) judge bursts into alerts and publish the hot questions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from livectl.bus.consumer import Entry
from livectl.bus.keys import RoomKeys
from livectl.bus.publish import Message
from livectl.ingest.entries import entry_ms, unpack_entry
from livectl.kit import codec
from livectl.opinion import bursts
from livectl.opinion.analysis import analyse
from livectl.opinion.bursts import ANY_CATEGORY, NEGATIVE, judge, title_of
from livectl.opinion.service import AlertService, WatchlistService
from livectl.opinion.windows import Observed, Windows
from livectl.resources import Resources

GROUP = "opinion"


class OpinionWorker:
    def __init__(self, resources: Resources) -> None:
        self._watchlists = WatchlistService(resources)
        self._windows = Windows(resources.redis)

    async def handle(self, room: str, entries: Sequence[Entry]) -> None:
        watchlist = await self._watchlists.watchlist(room)
        observed = []
        for entry in entries:
            # Server time (the entry id), not the client's ts: a client cannot move its
            # messages into another window.
            at = entry_ms(entry.id)
            for item in unpack_entry(entry.id, entry.fields):
                event = item.event
                if event["type"] != "chat":
                    continue
                analysis = analyse(event["text"], watchlist)
                signals = bursts.signals_of(analysis.tags, analysis.negative)
                observed.append(
                    Observed(
                        at_ms=at,
                        key=item.key,
                        user=event["user"]["id"],
                        text=event["text"],
                        words=analysis.words,
                        signals=signals,
                        intents=analysis.intents,
                    )
                )
        await self._windows.record(room, observed)


class OpinionTick:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._watchlists = WatchlistService(resources)
        self._windows = Windows(resources.redis)
        self._alerts = AlertService(resources)

    async def tick(self, room: str, now_ms: int) -> None:
        await self._judge_bursts(room, now_ms)
        await self._publish_hot_questions(room, now_ms)

    async def _judge_bursts(self, room: str, now_ms: int) -> None:
        watchlist = await self._watchlists.watchlist(room)
        signals = (NEGATIVE, ANY_CATEGORY, *watchlist.categories)
        found = await self._windows.figures(room, now_ms, signals)
        passed = {
            signal: (figures, level)
            for signal, (figures, _) in found.items()
            if (level := judge(signal, figures)) is not None
        }
        hot = {bursts.cool_down_family(signal) for signal in passed}
        await self._alerts.settle_burst_alerts(room, hot, now_ms)
        for signal in bursts.choose(passed):
            figures, level = passed[signal]
            # The cool-down is taken atomically: one alert per burst even if two workers
            # tick the room around a lease hand-over.
            cooled = await self._resources.redis.set(
                RoomKeys(room).alert_cool_down(bursts.cool_down_family(signal)),
                now_ms,
                nx=True,
                px=bursts.COOL_DOWN_MS,
            )
            if not cooled:
                continue
            samples = found[signal][1]
            alert = await self._alerts.raise_alert(
                room,
                kind=signal,
                level=level,
                title=title_of(signal, figures),
                samples=samples,
                figures=figures_out(figures),
            )
            await self._alerts.watch_burst_alert(
                room, bursts.cool_down_family(signal), alert.id, now_ms
            )

    async def _publish_hot_questions(self, room: str, now_ms: int) -> None:
        message = await self._windows.questions_message(room, now_ms)
        items = message["items"]
        counts = codec.dumps([(item["intent"], item["count"]) for item in items])
        # Published when the counts change, not every second; a room nobody asked anything
        # in gets no message at all.
        previous = await self._resources.redis.set(
            RoomKeys(room).questions_published, counts, get=True, px=600_000
        )
        if previous != counts and (items or previous is not None):
            await self._resources.publisher.publish(
                room,
                [Message("questions", message)],
            )


def figures_out(figures: bursts.Figures) -> dict[str, Any]:
    return {
        "window_s": bursts.WINDOW_BUCKETS * bursts.BUCKET_MS // 1000,
        "messages": figures.total,
        "texts": figures.texts,
        "users": figures.users,
        "share": round(figures.share, 3),
        "baseline_per_window": round(figures.baseline_per_window, 2),
    }
