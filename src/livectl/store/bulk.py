"""Bulk inserts that skip rows already there, for the workers that write batches of stream
entries (which may be delivered again) into PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import column, select, table, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from livectl.store.base import Base


async def insert_new_rows(
    session: AsyncSession,
    model: type[Base],
    columns: Sequence[str],
    records: Sequence[tuple[Any, ...]],
) -> None:
    """Insert ``records`` (values in the order of ``columns``) into ``model``'s table; a row that
    breaks a unique constraint (one written before: a redelivered batch) is skipped, not an
    error. COPY into a staging table, then one INSERT from it: for the archive a third of the
    worker's CPU per row of binding a multi-row INSERT's parameters row by row. Within the
    session's transaction."""
    if not records:
        return
    target = model.__tablename__
    staging = f"{target}_in"
    # Per connection, emptied by every commit (or rollback). Through the session first: that
    # begins its transaction, which the COPY then joins (straight on the driver, before it,
    # the staged rows would be committed and so emptied).
    await session.execute(
        text(
            f"CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {target} INCLUDING DEFAULTS) "
            "ON COMMIT DELETE ROWS"
        )
    )
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None  # asyncpg's connection, while the session holds it
    await driver.copy_records_to_table(staging, records=records, columns=list(columns))
    staged = table(staging, *(column(name) for name in columns))
    await session.execute(
        insert(model).from_select(list(columns), select(*staged.c)).on_conflict_do_nothing()
    )
