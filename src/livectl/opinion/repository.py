"""Alerts and watchlists in PostgreSQL: the only place in this domain with SQL."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from livectl.opinion.models import Alert, RoomWatchlist
from livectl.store.base import put_row

OPEN_STATUSES = ("open", "acked")


async def add_alert(session: AsyncSession, alert: Alert) -> None:
    session.add(alert)
    await session.flush()


async def get_alert(session: AsyncSession, room_id: str, alert_id: str) -> Alert | None:
    query = select(Alert).where(Alert.room_id == room_id, Alert.id == alert_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


# Built once: every console that connects lists its room's alerts, and a statement built per
# call leaves its bind parameters as cyclic garbage (10 objects a socket), which would make the
# gateway's collector run more often or hold more memory.
_LIST_ALERTS = (
    select(Alert)
    .where(
        Alert.room_id == bindparam("room_id"),
        Alert.status.in_(bindparam("statuses", expanding=True)),
    )
    .order_by(Alert.created_at.desc(), Alert.id)
    .limit(bindparam("limit"))
)


async def list_alerts(
    session: AsyncSession, room_id: str, statuses: Sequence[str], limit: int
) -> Sequence[Alert]:
    parameters = {"room_id": room_id, "statuses": list(statuses), "limit": limit}
    return (await session.execute(_LIST_ALERTS, parameters)).scalars().all()


async def get_watchlist(session: AsyncSession, room_id: str) -> RoomWatchlist | None:
    return await session.get(RoomWatchlist, room_id)


async def put_watchlist(session: AsyncSession, watchlist: RoomWatchlist) -> None:
    await put_row(session, watchlist)
