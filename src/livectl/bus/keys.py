"""Every Redis key livectl uses, in one place.

A room's keys carry the room in a hash tag, ``lc:{room}:...``, so they share one Redis
Cluster slot: a Lua script may touch several of them and rooms spread across shards.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

ROOMS = "lc:rooms"
# How long a group remembers that it applied an entry: far past the longest redelivery
# (reclaim idle time times the retry cap), far short of keeping a marker per entry forever.
APPLIED_TTL_MS = 15 * 60_000

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
        """The prefix of every key of the room (one hash tag: one cluster slot), to scan them."""
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

    def tick_lease(self, concern: str) -> str:
        return f"{self._prefix}:tick:{concern}"

    def follow_lease(self, group: str) -> str:
        """Which consumer of an ordered group follows the room's stream (bus/consumer)."""
        return f"{self._prefix}:follow:{group}"

    def coupon(self, drop: str) -> str:
        """A drop's terms and figures (see coupons/claims)."""
        return f"{self._prefix}:coupon:{drop}"

    def coupon_users(self, drop: str) -> str:
        """A drop's claims per user."""
        return f"{self.coupon(drop)}:users"

    def coupon_keys(self, drop: str) -> str:
        """A drop's idempotency keys and the first answer each got."""
        return f"{self.coupon(drop)}:keys"

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

    def giveaway(self, giveaway: str) -> str:
        """A giveaway's public terms while open; ``:entrants`` beside it (user ids)."""
        return f"{self._prefix}:giveaway:{giveaway}"

    @property
    def giveaways_open(self) -> str:
        return f"{self._prefix}:giveaways:open"

    def viewers(self, audience: str) -> str:
        """Users the room's events flagged ``new`` or ``fans``."""
        return f"{self._prefix}:viewers:{audience}"

    def claim_attempts(self, second: int) -> str:
        """Claim attempts per user in one second (limits against abuse)."""
        return f"{self._prefix}:claim-attempts:{second}"

    def once(self, token: str) -> str:
        return f"{self._prefix}:once:{token}"

    def seen_ids(self, bucket: int) -> str:
        return f"{self._prefix}:ids:{bucket}"

    def applied(self, group: str, entry_id: str) -> str:
        """The set of stream entries a group has applied, one set per minute of appending:
        a member per entry, expiring as a whole (APPLIED_TTL_MS)."""
        minute = int(entry_id.partition("-")[0]) // 60_000
        return f"{self._prefix}:applied:{group}:{minute}"

    @property
    def stats_totals(self) -> str:
        return f"{self._prefix}:stats"

    @property
    def stats_window(self) -> str:
        return f"{self._prefix}:stats:window"

    def stats_viewers(self, kind: str) -> str:
        return f"{self._prefix}:stats:uv:{kind}"

    @property
    def online(self) -> str:
        return f"{self._prefix}:online"

    @property
    def sessions(self) -> str:
        return f"{self._prefix}:sessions"

    @property
    def ranking_window(self) -> str:
        return f"{self._prefix}:ranking:window"

    @property
    def ranking_sold(self) -> str:
        return f"{self._prefix}:ranking:sold"

    @property
    def ranking_explained(self) -> str:
        return f"{self._prefix}:ranking:explained"

    @property
    def ranking_weights(self) -> str:
        return f"{self._prefix}:ranking:weights"

    @property
    def ranking_published(self) -> str:
        return f"{self._prefix}:ranking:published"

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

    @property
    def burst_alerts(self) -> str:
        """Burst alerts not yet resolved: "family:alert id", scored by when it was last hot."""
        return f"{self._prefix}:op:unresolved"

    def questions(self, minute: int, intent: str) -> str:
        return f"{self._prefix}:q:{minute}:{intent}"

    def question_samples(self, minute: int, intent: str) -> str:
        return f"{self._prefix}:q:{minute}:{intent}:s"

    # The whole live's question tally, kept as long as the room's other figures, for the report.
    def questions_live(self, intent: str) -> str:
        return f"{self._prefix}:q:live:{intent}"

    def question_samples_live(self, intent: str) -> str:
        return f"{self._prefix}:q:live:{intent}:s"

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

    # Rules: the rule set in force (a copy of the record), the running figures and 5 s
    # comment buckets counted from the events, the room clock, and the firings claimed.
    @property
    def rules(self) -> str:
        return f"{self._prefix}:rules"

    @property
    def rules_figures(self) -> str:
        return f"{self._prefix}:rules:figures"

    @property
    def rules_buckets(self) -> str:
        return f"{self._prefix}:rules:buckets"

    def rules_applied(self, entry_id: str) -> str:
        """The figures just before an entry was applied, kept for its redeliveries."""
        return f"{self._prefix}:rules:entry:{entry_id}"

    @property
    def rules_clock(self) -> str:
        return f"{self._prefix}:rules:clock"

    @property
    def rules_claimed(self) -> str:
        return f"{self._prefix}:rules:claimed"

    @property
    def rules_counts(self) -> str:
        return f"{self._prefix}:rules:counts"

    @property
    def rules_pending(self) -> str:
        return f"{self._prefix}:rules:pending"

    def channel(self, channel: Channel) -> str:
        return f"{self._prefix}:{channel.value}"

    def channel_seq(self, channel: Channel) -> str:
        return f"{self._prefix}:{channel.value}:seq"

    def channel_clock(self, channel: Channel) -> str:
        return f"{self._prefix}:{channel.value}:clock"


@dataclass(frozen=True, slots=True)
class TokenKeys:
    """Shared counters of one token (named by ``limits.rules.token_id``, never the token)."""

    token_id: str

    def events(self, second: int) -> str:
        return f"lc:token:{{{self.token_id}}}:events:{second}"

    @property
    def sockets(self) -> str:
        return f"lc:token:{{{self.token_id}}}:sockets"
