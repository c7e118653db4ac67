"""Alerts (raise, list, ack, resolve) and the room watchlists."""

from __future__ import annotations

import contextlib
import secrets
from functools import lru_cache
from typing import Any

from typing_extensions import TypedDict, Unpack

from livectl.auth.tokens import SYSTEM, Principal
from livectl.bus.keys import RoomKeys
from livectl.bus.publish import Message
from livectl.errors import AlertNotFound, AlertResolved
from livectl.kit import codec
from livectl.kit.cache import Copy, read_through
from livectl.kit.clock import now_ms
from livectl.opinion import repository
from livectl.opinion.bursts import QUIET_MS, Level
from livectl.opinion.keywords import Watchlist, default_watchlist
from livectl.opinion.lexicon import DEFAULT_WATCHLIST
from livectl.opinion.models import Alert, RoomWatchlist
from livectl.opinion.rules import AlertAction, next_alert_status
from livectl.opinion.schemas import AlertFilter, AlertOut, WatchlistIn, WatchlistOut
from livectl.resources import Resources
from livectl.rooms.service import RoomCache
from livectl.store.engine import Transaction, transaction

_FILTERS: dict[AlertFilter, tuple[str, ...]] = {
    "open": ("open",),
    "acked": ("acked",),
    "resolved": ("resolved",),
    "active": repository.OPEN_STATUSES,
    "all": ("open", "acked", "resolved"),
}


def alert_out(alert: Alert) -> AlertOut:
    return AlertOut.model_validate(alert, from_attributes=True)


class NewAlert(TypedDict):
    kind: str
    level: Level
    title: str
    samples: list[dict[str, Any]]
    figures: dict[str, Any]


class AlertService:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources

    async def raise_alert(self, room: str, **alert: Unpack[NewAlert]) -> AlertOut:
        async with transaction(self._resources.sessionmaker) as tx:
            return await self.add_alert(tx, room, **alert)

    async def add_alert(self, tx: Transaction, room: str, **alert: Unpack[NewAlert]) -> AlertOut:
        """Raise an alert within the caller's transaction (a rule's firing marks its action
        done in the same one), announced once it commits."""
        row = Alert(
            id=f"al_{secrets.token_hex(8)}",
            room_id=room,
            kind=alert["kind"],
            level=alert["level"],
            title=alert["title"][:200],
            samples=alert["samples"],
            figures=alert["figures"],
            status="open",
            created_at=now_ms(),
        )
        await repository.add_alert(tx.session, row)
        self._announce_after(tx, room, row)
        return alert_out(row)

    async def alerts(self, room: str, status: AlertFilter, limit: int) -> list[AlertOut]:
        await RoomCache(self._resources).state(room)  # 404 for an unknown room
        async with self._resources.sessionmaker() as session:
            alerts = await repository.list_alerts(session, room, _FILTERS[status], limit)
        return [alert_out(alert) for alert in alerts]

    async def transition(
        self, room: str, alert_id: str, action: AlertAction, actor: str
    ) -> AlertOut:
        async with transaction(self._resources.sessionmaker) as tx:
            alert = await repository.get_alert(tx.session, room, alert_id)
            if alert is None:
                raise AlertNotFound(f"no alert {alert_id!r} in room {room!r}")
            try:
                status = next_alert_status(alert.status, action)
            except ValueError as exc:
                raise AlertResolved(str(exc)) from exc
            if status is not None:
                alert.status = status
                if status == "acked":
                    alert.acked_by, alert.acked_at = actor, now_ms()
                else:
                    alert.resolved_by, alert.resolved_at = actor, now_ms()
                self._announce_after(tx, room, alert)
        return alert_out(alert)

    async def watch_burst_alert(self, room: str, family: str, alert_id: str, now_ms: int) -> None:
        await self._resources.redis.zadd(
            RoomKeys(room).burst_alerts, {f"{family}:{alert_id}": now_ms}
        )

    async def settle_burst_alerts(self, room: str, hot: set[str], now_ms: int) -> None:
        """Note which signal families are still hot; resolve, as the system, the burst alerts
        whose family has been quiet for ``QUIET_MS`` (one small sorted set per room: the
        database is touched only when one is due)."""
        redis = self._resources.redis
        key = RoomKeys(room).burst_alerts
        still_hot: dict[str, int] = {}
        tracked: list[tuple[bytes, float]] = await redis.zrange(  # type: ignore[assignment]
            key, 0, -1, withscores=True
        )
        for member, last_hot in tracked:
            name = codec.text(member)
            family, _, alert_id = name.partition(":")
            if family in hot:
                still_hot[name] = now_ms
            elif now_ms - last_hot >= QUIET_MS:
                # Resolving twice is a no-op; an alert deleted with its room is simply gone.
                with contextlib.suppress(AlertNotFound):
                    await self.transition(room, alert_id, "resolve", SYSTEM)
                await redis.zrem(key, name)
        if still_hot:
            await redis.zadd(key, still_hot)

    def _announce_after(self, tx: Transaction, room: str, alert: Alert) -> None:
        async def announce() -> None:
            await self._resources.publisher.publish(
                room, [Message("alert", alert_out(alert).model_dump())]
            )

        tx.after_commit(announce)


@lru_cache(maxsize=1024)
def compile_watchlist(cached: bytes) -> Watchlist:
    # Keyed by the cached JSON itself: a changed watchlist is a new key, so no process ever
    # matches with a stale copy, and unchanged ones compile once per process.
    categories = codec.loads(cached)["categories"]
    return default_watchlist() if categories is None else Watchlist(categories)


class WatchlistService:
    def __init__(self, resources: Resources) -> None:
        self._resources = resources

    async def watchlist(self, room: str) -> Watchlist:
        return compile_watchlist(await self._cached(room))

    async def get(self, room: str) -> WatchlistOut:
        await RoomCache(self._resources).state(room)
        categories = codec.loads(await self._cached(room))["categories"]
        if categories is None:
            return WatchlistOut(
                categories={k: list(v) for k, v in DEFAULT_WATCHLIST.items()}, default=True
            )
        return WatchlistOut(categories=categories, default=False)

    async def put(self, room: str, body: WatchlistIn, principal: Principal) -> WatchlistOut:
        await RoomCache(self._resources).state(room)
        categories = {name: list(dict.fromkeys(words)) for name, words in body.categories.items()}
        async with transaction(self._resources.sessionmaker) as tx:
            await repository.put_watchlist(
                tx.session,
                RoomWatchlist(
                    room_id=room,
                    categories=categories,
                    updated_by=principal.sub,
                    updated_at=now_ms(),
                ),
            )

            async def refresh() -> None:
                await self._resources.redis.set(
                    RoomKeys(room).watchlist, codec.dumps({"categories": categories})
                )

            tx.after_commit(refresh)
        return WatchlistOut(categories=categories, default=False)

    async def _cached(self, room: str) -> bytes:
        (watchlist,) = await read_through(self._resources.redis, self.copy(room))
        return watchlist

    def copy(self, room: str) -> Copy:
        """The room's watchlist: what ``compile_watchlist`` reads."""

        async def load() -> bytes:
            async with self._resources.sessionmaker() as session:
                row = await repository.get_watchlist(session, room)
            return codec.dumps({"categories": row.categories if row else None})

        return Copy(RoomKeys(room).watchlist, load)
