"""Per-minute rollups in PostgreSQL: the only place in this domain with SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from livectl.stats.models import StatsMinute


async def upsert_minute(
    session: AsyncSession, room_id: str, minute_ms: int, stats: dict[str, Any]
) -> None:
    """Idempotent: a minute rolled up twice (a tick lease moving mid-minute) keeps the last."""
    statement = insert(StatsMinute).values(room_id=room_id, minute_ms=minute_ms, stats=stats)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[StatsMinute.room_id, StatsMinute.minute_ms],
            set_={"stats": statement.excluded.stats},
        )
    )


async def list_minutes(session: AsyncSession, room_id: str) -> Sequence[StatsMinute]:
    query = (
        select(StatsMinute).where(StatsMinute.room_id == room_id).order_by(StatsMinute.minute_ms)
    )
    return (await session.execute(query)).scalars().all()
