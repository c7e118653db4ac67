from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from livectl.archive.models import ArchivedEvent


async def insert_events(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        # SQLAlchemy batches the rows into multi-row INSERTs under the driver's parameter cap.
        await session.execute(insert(ArchivedEvent).on_conflict_do_nothing(), list(rows))


async def count_events(session: AsyncSession, room_id: str) -> int:
    query = select(func.count()).select_from(ArchivedEvent).where(ArchivedEvent.room_id == room_id)
    return int((await session.execute(query)).scalar_one())


async def room_events(session: AsyncSession, room_id: str) -> Sequence[dict[str, Any]]:
    """The room's events as they were accepted, in stream order."""
    query = (
        select(ArchivedEvent.body)
        .where(ArchivedEvent.room_id == room_id)
        .order_by(ArchivedEvent.entry_ms, ArchivedEvent.entry_seq, ArchivedEvent.idx)
    )
    return (await session.execute(query)).scalars().all()
