from __future__ import annotations

from sqlalchemy import MetaData, inspect
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


async def put_row(session: AsyncSession, row: Base) -> None:
    """Insert the row, or overwrite every column of the one with its primary key: for the
    settings a controller saves whole (one row per room)."""
    mapper = inspect(type(row))
    values = {
        column.name: getattr(row, attr.key)
        for attr in mapper.column_attrs
        for column in attr.columns
    }
    keys = [column.name for column in mapper.primary_key]
    await session.execute(
        insert(type(row))
        .values(values)
        .on_conflict_do_update(
            index_elements=keys, set_={k: v for k, v in values.items() if k not in keys}
        )
    )
