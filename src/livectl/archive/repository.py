from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from livectl.archive.models import ArchivedEvent
from livectl.kit import codec
from livectl.store.bulk import insert_new_rows

_COLUMNS = [column.name for column in ArchivedEvent.__table__.columns]


async def insert_events(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Rows already archived (a redelivered entry) are skipped."""
    records = [
        tuple(codec.dumps_str(row["body"]) if name == "body" else row[name] for name in _COLUMNS)
        for row in rows
    ]
    await insert_new_rows(session, ArchivedEvent, _COLUMNS, records)


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
