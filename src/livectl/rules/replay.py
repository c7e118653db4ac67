"""``livectl replay ROOM``: a recorded live's archived events, replayed N times faster into a
scratch room whose rules only report (dry run), to see which rules would fire, when and why.

The scratch room's clock runs the recorded live's time at N x (see ``RoomClock``), and its
events keep their recorded times, so the running workers step and window it exactly as they
did the live: the same rules fire at the same offsets from the start.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from livectl.archive import repository as archive
from livectl.auth.tokens import Principal, Role
from livectl.bus.keys import RoomKeys
from livectl.config import Settings
from livectl.errors import RoomNotFound
from livectl.kit import codec
from livectl.kit.clock import now_ms
from livectl.resources import Resources, open_resources
from livectl.rooms import repository as rooms
from livectl.rooms.schemas import ProductIn, RoomCreate
from livectl.rooms.service import RoomService
from livectl.rules.rules import STEP_MS
from livectl.rules.schemas import FiringOut, RuleSetIn
from livectl.rules.service import FiringService, RuleService
from livectl.rules.worker import GRACE_MS
from livectl.store.engine import transaction

REPLAYER = Principal(sub="replay", role=Role.ADMIN, rooms=frozenset({"*"}))
# Events due within this much wall time of each other go out as one stream entry.
_BATCH_MS = 20


@dataclass(frozen=True, slots=True)
class Recording:
    room: str
    title: str
    started_ms: int
    ended_ms: int
    products: list[ProductIn]
    events: Sequence[dict[str, Any]]


def scratch_room_id(room: str) -> str:
    return f"{room[:44]}.replay-{secrets.token_hex(4)}"


def due_batches(
    events: Sequence[dict[str, Any]], origin_ms: int, speed: float
) -> list[tuple[float, list[dict[str, Any]]]]:
    """(seconds after the replay begins, events): the recorded times, ``speed`` times faster."""
    batches: list[tuple[float, list[dict[str, Any]]]] = []
    for event in events:
        due = max(0.0, (event["ts"] - origin_ms) / speed / 1000)
        if batches and due - batches[-1][0] <= _BATCH_MS / 1000:
            batches[-1][1].append(event)
        else:
            batches.append((due, [event]))
    return batches


def describe(firing: FiringOut) -> str:
    offset = (firing.offset_ms or 0) / 1000
    actions = ", ".join(action["kind"] for action in firing.actions)
    return f"{offset:9.1f} s  {firing.rule_id:<20} {firing.reason}  -> {actions}"


class Replayer:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._rules = RuleService(resources)
        self._rooms = RoomService(resources)

    async def recording(self, room: str) -> Recording:
        async with self._resources.sessionmaker() as session:
            row = await rooms.get_room(session, room)
            if row is None:
                raise RoomNotFound(f"no room {room!r}")
            products = await rooms.list_products(session, room)
            events = await archive.room_events(session, room)
        if row.started_at is None:
            raise RoomNotFound(f"room {room!r} never went live: nothing to replay")
        # Up to where the live's clock got: its last step, or a grace before its end.
        stepped = await self._resources.redis.hget(RoomKeys(room).rules_clock, "until")
        if stepped is not None:
            ended = int(stepped)
        elif row.ended_at is not None:
            ended = row.ended_at - GRACE_MS
        else:
            ended = max((event["ts"] for event in events), default=row.started_at)
        return Recording(
            room=room,
            title=row.title,
            started_ms=row.started_at,
            ended_ms=ended,
            products=[
                ProductIn(
                    id=p.id, name=p.name, aliases=list(p.aliases), price=p.price, stock=p.stock
                )
                for p in products
            ],
            events=events,
        )

    async def rules_of(self, room: str, rules_json: bytes | None) -> RuleSetIn:
        """The rules given (checked against the recorded room), else the room's own."""
        if rules_json is None:
            return (await self._rules.in_force(room)).rules
        rules = self._rules.parse(rules_json)
        await self._rules.check_references(room, rules)
        return rules

    async def replay(
        self, recording: Recording, rules: RuleSetIn, speed: float
    ) -> tuple[str, list[FiringOut]]:
        scratch = scratch_room_id(recording.room)
        async with transaction(self._resources.sessionmaker) as tx:
            await self._rooms.create(
                tx, RoomCreate(id=scratch, title=recording.title[:100]), REPLAYER
            )
            await tx.session.flush()
            await self._rooms.set_products(tx, scratch, recording.products)
        await self._rules.put(scratch, rules.model_copy(update={"dry_run": True}), REPLAYER)
        began = now_ms()
        # Set before the room goes live, so its first tick already runs the recorded clock.
        await self._resources.redis.hset(
            RoomKeys(scratch).rules_clock,
            mapping={
                "started_ms": recording.started_ms,
                "origin_event_ms": recording.started_ms,
                "origin_wall_ms": began,
                "speed": speed,
                "until": recording.started_ms - STEP_MS,
            },
        )
        async with transaction(self._resources.sessionmaker) as tx:
            await self._rooms.transition(tx, scratch, "start")
        try:
            await self._send(scratch, recording, began, speed)
            await self._wait_for_clock(scratch, recording.ended_ms)
        finally:
            async with transaction(self._resources.sessionmaker) as tx:
                await self._rooms.transition(tx, scratch, "end")
        firings = await FiringService(self._resources).firings(scratch, 500)
        # A tick takes several steps at once at speed: it may have stepped past the live's end.
        within = [firing for firing in firings if firing.at <= recording.ended_ms]
        return scratch, sorted(within, key=lambda firing: (firing.at, firing.rule_id))

    async def _send(self, scratch: str, recording: Recording, began: int, speed: float) -> None:
        stream = RoomKeys(scratch).events
        for due_s, events in due_batches(recording.events, recording.started_ms, speed):
            delay = began / 1000 + due_s - now_ms() / 1000
            if delay > 0:
                await asyncio.sleep(delay)
            await self._resources.redis.xadd(stream, {"e": codec.dumps(events)})

    async def _wait_for_clock(self, scratch: str, until_ms: int) -> None:
        """Until the workers have stepped the scratch room's clock past the live's end and
        carried out every firing."""
        keys = RoomKeys(scratch)
        while True:
            stepped, pending = await asyncio.gather(
                self._resources.redis.hget(keys.rules_clock, "until"),
                self._resources.redis.hlen(keys.rules_pending),
            )
            if stepped is not None and int(stepped) >= until_ms and not pending:
                return
            await asyncio.sleep(0.2)


async def run_replay(settings: Settings, room: str, speed: float, rules_json: bytes | None) -> None:
    """What ``livectl replay`` prints: the scratch room, then each firing, in live time."""
    async with open_resources(settings) as resources:
        replayer = Replayer(resources)
        recording = await replayer.recording(room)
        rules = await replayer.rules_of(room, rules_json)
        span_s = (recording.ended_ms - recording.started_ms) / 1000
        print(
            f"replaying {room}: {len(recording.events)} events over {span_s:.0f} s at {speed:g}x, "
            f"{len(rules.rules)} rules in dry run"
        )
        scratch, firings = await replayer.replay(recording, rules, speed)
        print(f"scratch room {scratch}: {len(firings)} firings")
        for firing in firings:
            print(describe(firing))
