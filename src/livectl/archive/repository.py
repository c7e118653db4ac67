from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from livectl.archive.models import ArchivedEvent
from livectl.kit import codec

_COLUMNS = [column.name for column in ArchivedEvent.__table__.columns]
# Per connection, emptied by every commit (or rollback).
_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS events_in (LIKE events INCLUDING DEFAULTS) "
    "ON COMMIT DELETE ROWS"
)
# The staging table is made LIKE events: the same columns in the same order.
_FROM_STAGING = "INSERT INTO events SELECT * FROM events_in ON CONFLICT DO NOTHING"


async def insert_events(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Rows already archived (a redelivered entry) are skipped. COPY into a staging table
    then one INSERT: a third of the CPU of binding a multi-row INSERT's parameters row by
    row, which was the archive worker's main cost. Within the session's transaction."""
    if not rows:
        return
    records = [
        tuple(codec.dumps_str(row["body"]) if name == "body" else row[name] for name in _COLUMNS)
        for row in rows
    ]
    # Through the session first: that begins its transaction, which the COPY then joins
    # (straight on the driver, before it, the staged rows would be committed and so emptied).
    await session.execute(text(_STAGING))
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None  # asyncpg's connection, while the session holds it
    await driver.copy_records_to_table("events_in", records=records, columns=_COLUMNS)
    await session.execute(text(_FROM_STAGING))


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
