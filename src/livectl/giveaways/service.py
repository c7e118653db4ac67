"""Giveaways (福袋): started with a committed seed, entered from the room's events, drawn on
time, recorded in PostgreSQL and announced on the console and live channels.

Entry point for other concerns (the rules' ``start_giveaway`` action)::

    await GiveawayService(resources).start(room, spec, actor, key=firing_id)

Redis holds what matching needs while a giveaway is open: its terms (``RoomKeys.giveaway``),
its entrants (a sorted set of user id -> when they first entered, by server time) and the
room's set of giveaways not yet announced as drawn. The record (terms, secret seed, entries,
winners) lives in PostgreSQL; the draw is recorded there once and announced from the record.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from livectl.bus.keys import Channel, RoomKeys
from livectl.bus.publish import Message
from livectl.coupons.rules import viewer_flags
from livectl.giveaways import repository
from livectl.giveaways.models import Giveaway
from livectl.giveaways.rules import (
    ALGORITHM,
    GiveawayEnded,
    GiveawayNotDrawn,
    GiveawayNotFound,
    commitment,
    draw,
    enters,
    entries_hash,
    sorted_entries,
    state_of,
    within_entry_window,
)
from livectl.giveaways.schemas import GiveawayAudit, GiveawayDetail, GiveawaySpec
from livectl.ingest.entries import RoomEvent
from livectl.kit import codec
from livectl.kit.clock import now_ms
from livectl.kit.text import fold
from livectl.resources import Resources
from livectl.rooms.rules import RoomNotLive
from livectl.rooms.service import RoomCache
from livectl.store.engine import transaction

GROUP = "giveaways"

# A draw waits for the giveaways group to have applied every event appended before the end,
# but never longer than this past the end: a stalled worker cannot hold a draw back forever.
# Long enough for a crashed worker's restart and for the entries it held to be reclaimed
# (idle 30 s by default, see Settings.reclaim_idle_ms): viewers who entered in time count.
SETTLE_LIMIT_MS = 60_000
# Ending a room draws its open giveaways at once, after waiting up to 2 s for late entries.
ROOM_END_CHECKS = 20  # 0.1 s apart
# Redis copies outlive the end by a day at most, should an announcement never come.
_KEEP_MS = 24 * 3600 * 1000


def _entrants_key(keys: RoomKeys, giveaway_id: str) -> str:
    return f"{keys.giveaway(giveaway_id)}:entrants"


def _match_terms(row: Giveaway) -> dict[FieldT, EncodableT]:
    """What the entries worker matches events against."""
    return {
        "entry": row.entry,
        "keyword": fold(row.keyword) if row.keyword else "",
        "audience": row.audience,
        "created_at": row.created_at,
        "ends_at": row.ends_at,
    }


def _detail(row: Giveaway, entrants: int, now: int) -> GiveawayDetail:
    drawn = row.drawn_at is not None
    return GiveawayDetail(
        id=row.id,
        state=state_of(row.drawn_at, row.ends_at, now),
        title=row.title,
        prize=row.prize,
        winners=row.winners,
        entry=row.entry,
        keyword=row.keyword,
        audience=row.audience,
        created_at=row.created_at,
        ends_at=row.ends_at,
        entrants=len(row.entries or ()) if drawn else entrants,
        commitment=row.commitment,
        # The seed is secret until the entries are fixed and drawn.
        seed=row.seed if drawn else None,
        winner_ids=row.winner_ids if drawn else None,
        drawn_at=row.drawn_at,
        close_reason=row.close_reason,
        created_by=row.created_by,
        key=row.key,
    )


class GiveawayService:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._redis = resources.redis
        self._rooms = RoomCache(resources)

    async def start(
        self, room: str, spec: GiveawaySpec, actor: str, key: str | None = None
    ) -> GiveawayDetail:
        """Start a giveaway in a live room: the seed is made here and only its commitment
        published. With ``key`` (a rule firing id), a repeated start answers the giveaway the
        first one started and starts nothing new (keys of up to 200 characters)."""
        state = await self._rooms.state(room)
        if state.room.status != "live":
            raise RoomNotLive("giveaways start only while the room is live")
        seed = secrets.token_bytes(32)
        now = now_ms()
        wanted = Giveaway(
            id=f"gw-{secrets.token_hex(6)}",
            room_id=room,
            key=key,
            title=spec.title,
            prize=spec.prize,
            winners=spec.winners,
            entry=spec.entry,
            keyword=spec.keyword,
            audience=spec.audience,
            seed=seed.hex(),
            commitment=commitment(seed),
            created_by=actor,
            created_at=now,
            ends_at=now + spec.duration_s * 1000,
            close_reason=None,
            drawn_at=None,
            entries=None,
            entries_hash=None,
            winner_ids=None,
        )
        async with transaction(self._resources.sessionmaker) as tx:
            row = await repository.add_once(tx.session, wanted)
        if row.drawn_at is None:
            # Again for a repeated start: a crash may have come between commit and here.
            await self._open(room, row)
        return (await self._details(room, [row]))[0]

    async def _open(self, room: str, row: Giveaway) -> None:
        keys = RoomKeys(room)
        async with self._redis.pipeline(transaction=True) as pipe:
            # The start announces no entrants: the tick pushes a count only once one moves.
            pipe.hset(keys.giveaway(row.id), mapping=_match_terms(row) | {"pushed": 0})
            pipe.pexpireat(keys.giveaway(row.id), row.ends_at + _KEEP_MS)
            pipe.sadd(keys.giveaways_open, row.id)
            await pipe.execute()
        await self._announce(room, row, f"giveaway:{row.id}:started")

    async def recover(self) -> None:
        """Put back in Redis every giveaway not yet drawn that Redis does not know as open
        (Redis lost it in a restart, or a crash came between the record and Redis), once its
        room is known to this Redis: the tick then draws it on time, or it is drawn now if
        its room has ended. Re-opening one drawn meanwhile is harmless: its next settle finds
        the record and announces nothing twice."""
        async with self._resources.sessionmaker() as session:
            rows = await repository.undrawn(session)
        for row in rows:
            keys = RoomKeys(row.room_id)
            # Only rooms this Redis serves: another Redis over the same database (a second
            # deployment, a test's own stack) must never draw a giveaway it saw no entries of.
            if not await self._redis.exists(keys.meta) or await self._redis.sismember(
                keys.giveaways_open, row.id
            ):
                continue
            await self._open(row.room_id, row)
            state = await self._rooms.state(row.room_id)
            if state.room.status == "ended":  # its end's own draw was cut short
                await self.close_room(row.room_id)

    async def giveaways(self, room: str) -> list[GiveawayDetail]:
        await self._rooms.state(room)  # 404 for an unknown room
        async with self._resources.sessionmaker() as session:
            rows = await repository.list_for_room(session, room)
        return await self._details(room, rows)

    async def get(self, room: str, giveaway_id: str) -> GiveawayDetail:
        return (await self._details(room, [await self._row(room, giveaway_id)]))[0]

    async def open_giveaways(self, room: str) -> list[dict[str, Any]]:
        """The giveaways not yet drawn, public part: for a console or live snapshot."""
        open_ids = await self._open_ids(room)
        if not open_ids:
            return []
        async with self._resources.sessionmaker() as session:
            rows = [await repository.get(session, room, giveaway_id) for giveaway_id in open_ids]
        return [
            _public(view)
            for view in await self._details(room, [row for row in rows if row is not None])
            if view.state != "drawn"
        ]

    async def _open_ids(self, room: str) -> list[str]:
        """The room's giveaways not yet announced as drawn."""
        return sorted(
            codec.text(g) for g in await self._redis.smembers(RoomKeys(room).giveaways_open)
        )

    async def _row(self, room: str, giveaway_id: str) -> Giveaway:
        async with self._resources.sessionmaker() as session:
            row = await repository.get(session, room, giveaway_id)
        if row is None:
            raise GiveawayNotFound(f"no giveaway {giveaway_id!r} in room {room!r}")
        return row

    async def _details(self, room: str, rows: Sequence[Giveaway]) -> list[GiveawayDetail]:
        keys = RoomKeys(room)
        async with self._redis.pipeline(transaction=False) as pipe:
            for row in rows:
                pipe.zcard(_entrants_key(keys, row.id))
            counts: list[int] = await pipe.execute()
        now = now_ms()
        return [_detail(row, count, now) for row, count in zip(rows, counts, strict=True)]

    async def audit(self, room: str, giveaway_id: str) -> GiveawayAudit:
        """What anyone needs to re-run the draw (``rules.verify``), once it is drawn."""
        row = await self._row(room, giveaway_id)
        if row.drawn_at is None:
            raise GiveawayNotDrawn("the giveaway has not been drawn yet; its seed is secret")
        # A drawn record always holds its entries, their hash and the winners (one UPDATE).
        return GiveawayAudit.model_validate(
            {
                "id": row.id,
                "algorithm": ALGORITHM,
                "commitment": row.commitment,
                "seed": row.seed,
                "winners": row.winners,
                "entries": row.entries,
                "entries_hash": row.entries_hash,
                "winner_ids": row.winner_ids,
                "drawn_at": row.drawn_at,
            }
        )

    async def close(self, room: str, giveaway_id: str, reason: str = "closed") -> GiveawayDetail:
        """End entries now and draw as soon as every earlier event has been applied (here
        if it already has, else on the next tick)."""
        await self._row(room, giveaway_id)  # 404 for a giveaway of another room
        now = now_ms()
        async with transaction(self._resources.sessionmaker) as tx:
            closed = await repository.close_entries(tx.session, giveaway_id, reason, now)
        if closed is None:
            raise GiveawayEnded("this giveaway's entries have already closed")
        await self._redis.hset(RoomKeys(room).giveaway(giveaway_id), "ends_at", now)
        await self.settle(room, giveaway_id, now)
        return await self.get(room, giveaway_id)

    async def close_room(self, room: str) -> None:
        """A room that ends draws its open giveaways now (its tick stops with the live)."""
        open_ids = await self._open_ids(room)
        if not open_ids:
            return
        now = now_ms()
        async with transaction(self._resources.sessionmaker) as tx:
            for giveaway_id in open_ids:
                await repository.close_entries(tx.session, giveaway_id, "room_ended", now)
        for _ in range(ROOM_END_CHECKS):
            if await self._entries_applied(room, now):
                break
            await asyncio.sleep(0.1)
        for giveaway_id in open_ids:
            await self.settle(room, giveaway_id, now_ms(), force=True)

    async def tick(self, room: str, now: int) -> None:
        """Once a second per live room: draw what is due, push entry counts that moved."""
        keys = RoomKeys(room)
        open_ids = await self._open_ids(room)
        if not open_ids:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for giveaway_id in open_ids:
                pipe.hmget(keys.giveaway(giveaway_id), ["ends_at", "pushed"])
                pipe.zcard(_entrants_key(keys, giveaway_id))
            replies = await pipe.execute()
        moved: list[str] = []
        for index, giveaway_id in enumerate(open_ids):
            (ends_at, pushed), count = replies[2 * index], replies[2 * index + 1]
            if ends_at is None or now >= int(ends_at):
                await self.settle(room, giveaway_id, now)
            elif codec.text_or_none(pushed) != str(count):
                moved.append(giveaway_id)
                await self._redis.hset(keys.giveaway(giveaway_id), "pushed", count)
        if moved:
            async with self._resources.sessionmaker() as session:
                rows = [await repository.get(session, room, giveaway_id) for giveaway_id in moved]
            await self._push_counts(room, [r for r in rows if r is not None])

    async def settle(self, room: str, giveaway_id: str, now: int, *, force: bool = False) -> None:
        """Draw a giveaway whose entries have closed, once every event appended before the
        end has been applied (or ``SETTLE_LIMIT_MS`` has passed, or ``force``); record the
        draw and announce it. Safe to repeat at any point: the draw of a fixed entry list is
        deterministic, the first record stands, the announcement is made once."""
        keys = RoomKeys(room)
        async with self._resources.sessionmaker() as session:
            row = await repository.get(session, room, giveaway_id)
        if row is None:
            await self._redis.srem(keys.giveaways_open, giveaway_id)
            return
        if row.drawn_at is None:
            if now < row.ends_at:
                return
            due = force or now >= row.ends_at + SETTLE_LIMIT_MS
            if not due and not await self._entries_applied(room, row.ends_at):
                return
            # Only entries from before the end count, whatever a late worker added since.
            raw: list[bytes] = await self._redis.zrangebyscore(  # type: ignore[assignment]
                _entrants_key(keys, giveaway_id), row.created_at, f"({row.ends_at}"
            )
            entries = sorted_entries(codec.text(user) for user in raw)
            async with transaction(self._resources.sessionmaker) as tx:
                await repository.record_draw(
                    tx.session,
                    giveaway_id,
                    entries=entries,
                    entries_hash=entries_hash(entries),
                    winner_ids=draw(bytes.fromhex(row.seed), entries, row.winners),
                    drawn_at=now_ms(),
                )
            row = await self._row(room, giveaway_id)  # the record that stands
        await self._announce(room, row, f"giveaway:{giveaway_id}:drawn")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.srem(keys.giveaways_open, giveaway_id)
            pipe.delete(keys.giveaway(giveaway_id), _entrants_key(keys, giveaway_id))
            await pipe.execute()

    async def _entries_applied(self, room: str, until: int) -> bool:
        """Whether the giveaways group has applied every event appended before ``until``:
        delivered past it and nothing before it still pending (unacknowledged)."""
        stream = RoomKeys(room).events
        try:
            groups: list[dict[str, Any]] = await self._redis.xinfo_groups(stream)
        except ResponseError:
            return False  # no stream yet: no worker has followed the room, nothing is known
        mine = next((g for g in groups if codec.text(g["name"]) == GROUP), None)
        if mine is None:
            return False
        last = codec.text(mine["last-delivered-id"])
        undelivered = await self._redis.xrange(stream, min=f"({last}", max=str(until - 1), count=1)
        if undelivered:
            return False
        pending = await self._redis.xpending_range(
            stream, GROUP, min="-", max=str(until - 1), count=1
        )
        return not pending

    async def _announce(self, room: str, row: Giveaway, token: str) -> None:
        """Publish a giveaway's state once per token on both channels (a retried start or
        draw announces nothing twice)."""
        (view,) = await self._details(room, [row])
        message = [Message("giveaway", _public(view))]
        for channel in (Channel.CONSOLE, Channel.LIVE):
            await self._resources.publisher.publish_once(room, [(token, message)], channel)

    async def _push_counts(self, room: str, rows: Sequence[Giveaway]) -> None:
        """Entry counts of giveaways still open: one closed meanwhile is announced by its
        draw alone."""
        views = [view for view in await self._details(room, rows) if view.state == "open"]
        await self._resources.publisher.publish(
            room,
            [Message("giveaway", _public(view)) for view in views],
            (Channel.CONSOLE, Channel.LIVE),
        )

    async def record_entries(self, room: str, events: Iterable[RoomEvent]) -> None:
        """Enter the users whose events match an open giveaway, each user once per giveaway
        (a sorted set keeps their earliest entry time: redelivery changes nothing)."""
        keys = RoomKeys(room)
        open_ids = await self._open_ids(room)
        if not open_ids:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for giveaway_id in open_ids:
                pipe.hgetall(keys.giveaway(giveaway_id))
            replies: list[dict[bytes, bytes]] = await pipe.execute()
        terms = {
            giveaway_id: {codec.text(k): codec.text(v) for k, v in reply.items()}
            for giveaway_id, reply in zip(open_ids, replies, strict=True)
            if reply
        }
        entered: dict[str, dict[str, int]] = {giveaway_id: {} for giveaway_id in terms}
        # Users whose event did not itself show them in the audience: the room's earlier
        # events may have (the coupons group keeps those audiences, see coupons.worker).
        unproven: dict[str, dict[str, int]] = {giveaway_id: {} for giveaway_id in terms}
        for item in events:
            event = item.event
            appended_at = int(item.entry_id.partition("-")[0])
            for giveaway_id, giveaway in terms.items():
                if not within_entry_window(giveaway, appended_at) or not enters(giveaway, event):
                    continue
                audience = giveaway["audience"]
                user = event["user"]["id"]
                target = (
                    entered if audience == "all" or audience in viewer_flags(event) else unproven
                )
                target[giveaway_id].setdefault(user, appended_at)
        for giveaway_id, users in unproven.items():
            if users:
                members = await self._redis.smismember(
                    keys.viewers(terms[giveaway_id]["audience"]), list(users)
                )
                for (user, at), member in zip(users.items(), members, strict=True):
                    if member:
                        entered[giveaway_id].setdefault(user, at)
        async with self._redis.pipeline(transaction=False) as pipe:
            for giveaway_id, users in entered.items():
                if users:
                    # LT keeps the earliest time a user entered, whatever order entries come in.
                    pipe.zadd(_entrants_key(keys, giveaway_id), _scores(users), lt=True)
                    pipe.pexpireat(
                        _entrants_key(keys, giveaway_id),
                        int(terms[giveaway_id]["ends_at"]) + _KEEP_MS,
                    )
            await pipe.execute()


def _scores(users: Mapping[str, int]) -> dict[str, float]:
    return {user: float(at) for user, at in users.items()}


def _public(view: GiveawayDetail) -> dict[str, Any]:
    return view.model_dump(exclude={"created_by", "key"})
