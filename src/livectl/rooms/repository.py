"""Rooms and products in PostgreSQL: the only place in this domain with SQL."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from livectl.rooms.models import Product, Room


async def get_room(session: AsyncSession, room_id: str, *, for_update: bool = False) -> Room | None:
    query = select(Room).where(Room.id == room_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def insert_room(session: AsyncSession, room: Room) -> bool:
    """False if a room with that id exists already."""
    result = await session.execute(
        insert(Room)
        .values(
            id=room.id,
            title=room.title,
            currency=room.currency,
            status=room.status,
            created_by=room.created_by,
            created_at=room.created_at,
            version=1,
        )
        .on_conflict_do_nothing(index_elements=[Room.id])
        .returning(Room.id)
    )
    return result.scalar_one_or_none() is not None


async def list_rooms(
    session: AsyncSession, room_ids: Sequence[str] | None, status: str | None, limit: int
) -> Sequence[tuple[Room, int]]:
    """Rooms newest first, each with its product count; ``room_ids`` None means every room."""
    product_count = (
        select(func.count()).where(Product.room_id == Room.id).correlate(Room).scalar_subquery()
    )
    query = select(Room, product_count).order_by(Room.created_at.desc(), Room.id).limit(limit)
    if room_ids is not None:
        query = query.where(Room.id.in_(room_ids))
    if status is not None:
        query = query.where(Room.status == status)
    return [(room, count) for room, count in (await session.execute(query)).all()]


async def list_products(session: AsyncSession, room_id: str) -> Sequence[Product]:
    query = select(Product).where(Product.room_id == room_id).order_by(Product.position)
    return (await session.execute(query)).scalars().all()


async def replace_products(session: AsyncSession, room_id: str, products: list[Product]) -> None:
    await session.execute(delete(Product).where(Product.room_id == room_id))
    session.add_all(products)
    await session.flush()


async def mark_sold_out(session: AsyncSession, room_id: str, product_id: str) -> bool:
    result = await session.execute(
        update(Product)
        .where(Product.room_id == room_id, Product.id == product_id)
        .values(sold_out=True)
        .returning(Product.id)
    )
    return result.scalar_one_or_none() is not None


async def bump_version(session: AsyncSession, room_id: str) -> None:
    await session.execute(update(Room).where(Room.id == room_id).values(version=Room.version + 1))
