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
    def tag(self) -> str:
        """The common prefix, for Lua that builds a room's keys itself (one slot: safe)."""
        return self._prefix

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

    def coupon(self, drop: str) -> str:
        """A drop's terms and figures; ``:users`` and ``:keys`` beside it (see coupons/claims)."""
        return f"{self._prefix}:coupon:{drop}"

    @property
    def coupons_open(self) -> str:
        return f"{self._prefix}:coupons:open"

    @property
    def coupon_codes(self) -> str:
        return f"{self._prefix}:coupon-codes"

    @property
    def coupon_redeemed(self) -> str:
        return f"{self._prefix}:coupon-redeemed"

    @property
    def coupon_outbox(self) -> str:
        return f"{self._prefix}:coupon-outbox"

    def viewers(self, audience: str) -> str:
        """Users the room's events flagged ``new`` or ``fans``."""
        return f"{self._prefix}:viewers:{audience}"

    def once(self, token: str) -> str:
        return f"{self._prefix}:once:{token}"

    def seen_ids(self, bucket: int) -> str:
        return f"{self._prefix}:ids:{bucket}"

    def channel(self, channel: Channel) -> str:
        return f"{self._prefix}:{channel.value}"

    def channel_seq(self, channel: Channel) -> str:
        return f"{self._prefix}:{channel.value}:seq"

    def channel_clock(self, channel: Channel) -> str:
        return f"{self._prefix}:{channel.value}:clock"
