"""Giveaways in PostgreSQL: the only place here with SQL."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, inspect, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from livectl.giveaways.models import Giveaway


async def add_once(session: AsyncSession, giveaway: Giveaway) -> Giveaway:
    """Insert the giveaway, or return the one already started with its key (a rule firing
    retried after a crash starts nothing twice)."""
    values = {attr.key: getattr(giveaway, attr.key) for attr in inspect(Giveaway).column_attrs}
    inserted = await session.execute(
        insert(Giveaway)
        .values(values)
        .on_conflict_do_nothing(index_elements=["room_id", "key"])
        .returning(Giveaway.id)
    )
    if inserted.scalar_one_or_none() is None and giveaway.key is not None:
        existing = await by_key(session, giveaway.room_id, giveaway.key)
        if existing is not None:
            return existing
    return giveaway


async def by_key(session: AsyncSession, room_id: str, key: str) -> Giveaway | None:
    query = select(Giveaway).where(Giveaway.room_id == room_id, Giveaway.key == key)
    return (await session.execute(query)).scalar_one_or_none()


async def get(session: AsyncSession, room_id: str, giveaway_id: str) -> Giveaway | None:
    query = select(Giveaway).where(Giveaway.room_id == room_id, Giveaway.id == giveaway_id)
    return (await session.execute(query)).scalar_one_or_none()


async def list_for_room(session: AsyncSession, room_id: str) -> Sequence[Giveaway]:
    query = (
        select(Giveaway)
        .where(Giveaway.room_id == room_id)
        .order_by(Giveaway.created_at, Giveaway.id)
    )
    return (await session.execute(query)).scalars().all()


async def undrawn(session: AsyncSession) -> Sequence[Giveaway]:
    query = select(Giveaway).where(Giveaway.drawn_at.is_(None)).order_by(Giveaway.created_at)
    return (await session.execute(query)).scalars().all()


async def close_entries(
    session: AsyncSession, giveaway_id: str, reason: str, at: int
) -> Giveaway | None:
    """End the entry window now; None if it had already ended (by time, or closed before)."""
    result = await session.execute(
        update(Giveaway)
        .where(
            Giveaway.id == giveaway_id,
            Giveaway.close_reason.is_(None),
            Giveaway.ends_at > at,
        )
        .values(ends_at=at, close_reason=reason)
        .returning(Giveaway)
    )
    return result.scalar_one_or_none()


async def record_draw(
    session: AsyncSession,
    giveaway_id: str,
    *,
    entries: list[str],
    entries_hash: str,
    winner_ids: list[str],
    drawn_at: int,
) -> None:
    """Record the draw unless another worker did first: the first record stands."""
    await session.execute(
        update(Giveaway)
        .where(Giveaway.id == giveaway_id, Giveaway.drawn_at.is_(None))
        .values(
            entries=entries,
            entries_hash=entries_hash,
            winner_ids=winner_ids,
            drawn_at=drawn_at,
            close_reason=func.coalesce(Giveaway.close_reason, "time_up"),
        )
    )
