"""The console relay: viewers' chat, out to the consoles as ``chat`` messages.

Each message carries its sentiment and watchlist tags, and the moderation verdict: a hidden
message is published staff-only (assistants see it marked hidden, host views never get it).
Analysis and verdicts are pure and cheap, so they happen here, on the one path that puts chat
on the console stream exactly once per stream entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from livectl.bus.consumer import Entry
from livectl.bus.keys import RoomKeys
from livectl.bus.publish import Message
from livectl.ingest.entries import RoomEvent, entry_ms, unpack_entry
from livectl.kit.cache import read_through
from livectl.moderation.rules import HideReason, Sighting, hide_reason, may_be_wave
from livectl.moderation.service import ModerationService, compile_policy
from livectl.moderation.sightings import Seen, Sightings
from livectl.opinion.analysis import Analysis, analyse
from livectl.opinion.service import AlertService, WatchlistService, compile_watchlist
from livectl.opinion.windows import text_hash
from livectl.resources import Resources

GROUP = "console-relay"

# An automatic hide raises one alert per text (wave) or user (flood) in this long.
_AUTO_HIDE_ALERT_EVERY_MS = 10 * 60_000


def chat_message(item: RoomEvent, analysis: Analysis, hidden: HideReason | None) -> Message:
    event = item.event
    data: dict[str, Any] = {
        "event_id": item.key,
        "user": event["user"],
        "text": event["text"],
        "ts": event["ts"],
        "sentiment": analysis.sentiment,
        "tags": list(analysis.tags),
        "hidden": hidden is not None,
    }
    if hidden:
        data["hidden_reason"] = hidden
    return Message("chat", data, staff_only=hidden is not None)


def _auto_hidden_about(item: RoomEvent, analysis: Analysis, reason: HideReason) -> str:
    """What one alert covers: a wave is one text, a flood one user."""
    if reason == "bot_wave":
        return f"{reason}:{text_hash(analysis.words)}"
    return f"{reason}:{item.event['user']['id']}"


class ConsoleRelay:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._publisher = resources.publisher
        self._watchlists = WatchlistService(resources)
        self._moderation = ModerationService(resources)
        self._alerts = AlertService(resources)
        self._sightings = Sightings(resources.redis)

    async def handle(self, room: str, entries: Sequence[Entry]) -> None:
        chats = [
            (entry.id, item)
            for entry in entries
            for item in unpack_entry(entry.id, entry.fields)
            if item.event["type"] == "chat"
        ]
        if not chats:
            return
        # Both in one round trip: each one more is one more wait for a core on a busy machine,
        # on the way of every chat to the consoles.
        watchlist_copy, policy_copy = await read_through(
            self._resources.redis, self._watchlists.copy(room), self._moderation.copy(room)
        )
        watchlist, policy = compile_watchlist(watchlist_copy), compile_policy(policy_copy)
        analyses = [analyse(item.event["text"], watchlist) for _, item in chats]
        sightings = await self._sightings.record(
            room,
            [
                Seen(
                    entry_ms(entry_id),
                    item.event["user"]["id"],
                    item.key,
                    text_hash(analysis.words or item.event["text"]),
                    may_be_wave(analysis.words, asking=bool(analysis.intents)),
                )
                for (entry_id, item), analysis in zip(chats, analyses, strict=True)
            ],
            policy.slow_mode_s,
        )
        by_entry: dict[str, list[Message]] = {entry.id: [] for entry in entries}
        # The first message of each wave (by text) or flood (by user) in this batch.
        auto_hidden: dict[str, tuple[RoomEvent, HideReason, Sighting]] = {}
        for (entry_id, item), analysis, seen in zip(chats, analyses, sightings, strict=True):
            reason = hide_reason(
                analysis.words,
                blocked=policy.blocked.contains(analysis.words),
                asking=bool(analysis.intents),
                at_ms=entry_ms(entry_id),
                seen=seen,
            )
            by_entry[entry_id].append(chat_message(item, analysis, reason))
            if reason in ("bot_wave", "flood"):
                about = _auto_hidden_about(item, analysis, reason)
                auto_hidden.setdefault(about, (item, reason, seen))
        # One publish per stream entry, guarded by the entry id, so a redelivered entry is
        # never shown twice even if the first delivery published and then crashed before ack.
        await self._publisher.publish_once(
            room, [(f"{GROUP}:{entry_id}", messages) for entry_id, messages in by_entry.items()]
        )
        for about, (item, reason, seen) in auto_hidden.items():
            await self._alert_auto_hide(room, about, item, reason, seen)

    async def _alert_auto_hide(
        self, room: str, about: str, item: RoomEvent, reason: HideReason, seen: Sighting
    ) -> None:
        user = item.event["user"]["id"]
        first = await self._resources.redis.set(
            RoomKeys(room).alert_cool_down(about),
            item.key,
            nx=True,
            px=_AUTO_HIDE_ALERT_EVERY_MS,
        )
        if not first:
            return
        text = item.event["text"]
        if reason == "bot_wave":
            title = f"疑似水军刷屏：{seen.senders} 位用户发送相同内容，已自动隐藏"
            figures = {"senders": seen.senders, "text": text}
        else:
            title = f"用户 {user} 重复刷屏 {seen.repeats} 次，已自动隐藏"
            figures = {"repeats": seen.repeats, "user": user}
        await self._moderation.record_auto_hide(room, reason, figures)
        await self._alerts.raise_alert(
            room,
            kind=reason,
            level="warning" if reason == "bot_wave" else "info",
            title=title,
            samples=[{"user": user, "text": text}],
            figures=figures,
        )
