"""Every Redis key livectl uses, in one place.

A room's keys carry the room in a hash tag, ``lc:{room}:...``, so they share one Redis
Cluster slot: a Lua script may touch several of them and rooms spread across shards.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

ROOMS = "lc:rooms"

# What redis-py returns for stream reads (bytes responses): per stream, its entries.
RawEntry = tuple[bytes, dict[bytes, bytes]]
StreamReply = list[tuple[bytes, list[RawEntry]]]


class Channel(StrEnum):
    """Outbound message channels: the full console stream and the public live subset."""

    CONSOLE = "out"
    LIVE = "live"


@dataclass(frozen=True, slots=True)
class RoomKeys:
    room: str

    @property
    def _prefix(self) -> str:
        return f"lc:{{{self.room}}}"

    @property
    def events(self) -> str:
        return f"{self._prefix}:events"

    @property
    def dead_letters(self) -> str:
        return f"{self._prefix}:dead"

    @property
    def meta(self) -> str:
        return f"{self._prefix}:room"

    @property
    def products(self) -> str:
        return f"{self._prefix}:products"

    @property
    def pin(self) -> str:
        return f"{self._prefix}:pin"

    @property
    def tick_lease(self) -> str:
        return f"{self._prefix}:tick"

    def once(self, token: str) -> str:
        return f"{self._prefix}:once:{token}"

    def seen_ids(self, bucket: int) -> str:
        return f"{self._prefix}:ids:{bucket}"

    # Opinion: per 5 s bucket, all chat (HyperLogLog of event keys) and per signal the
    # distinct texts, the distinct users and a few samples; hot questions per minute.
    def opinion_chat(self, bucket: int) -> str:
        return f"{self._prefix}:op:{bucket}:all"

    def opinion_texts(self, bucket: int, signal: str) -> str:
        return f"{self._prefix}:op:{bucket}:t:{signal}"

    def opinion_users(self, bucket: int, signal: str) -> str:
        return f"{self._prefix}:op:{bucket}:u:{signal}"

    def opinion_samples(self, bucket: int, signal: str) -> str:
        return f"{self._prefix}:op:{bucket}:s:{signal}"

    def alert_cool_down(self, kind: str) -> str:
        return f"{self._prefix}:op:cool:{kind}"

    def questions(self, minute: int, intent: str) -> str:
        return f"{self._prefix}:q:{minute}:{intent}"

    def question_samples(self, minute: int, intent: str) -> str:
        return f"{self._prefix}:q:{minute}:{intent}:s"

    @property
    def questions_published(self) -> str:
        return f"{self._prefix}:q:published"

    # Chat policy: the Redis copies of the room's watchlist and moderation settings.
    @property
    def watchlist(self) -> str:
        return f"{self._prefix}:watchlist"

    @property
    def moderation(self) -> str:
        return f"{self._prefix}:moderation"

    # Moderation: mutes (user -> until ms), slow mode, floods and waves of one text.
    @property
    def mutes(self) -> str:
        return f"{self._prefix}:mutes"

    def slow_mode(self, user: str) -> str:
        return f"{self._prefix}:slow:{user}"

    def repeats(self, user: str, text_hash: str) -> str:
        return f"{self._prefix}:flood:{user}:{text_hash}"

    def senders(self, text_hash: str) -> str:
        return f"{self._prefix}:wave:{text_hash}"

    def channel(self, channel: Channel) -> str:
        return f"{self._prefix}:{channel.value}"

    def channel_seq(self, channel: Channel) -> str:
        return f"{self._prefix}:{channel.value}:seq"

    def channel_clock(self, channel: Channel) -> str:
        return f"{self._prefix}:{channel.value}:clock"
