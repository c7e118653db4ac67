"""Moderation settings and the moderation log in PostgreSQL: the only SQL of this domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from livectl.moderation.models import ModerationAction, ModerationSettings
from livectl.store.base import put_row


async def get_settings(session: AsyncSession, room_id: str) -> ModerationSettings | None:
    return await session.get(ModerationSettings, room_id)


async def put_settings(session: AsyncSession, settings: ModerationSettings) -> None:
    await put_row(session, settings)


async def add_action(session: AsyncSession, action: ModerationAction) -> None:
    session.add(action)
    await session.flush()


async def list_actions(
    session: AsyncSession, room_id: str, limit: int
) -> Sequence[ModerationAction]:
    query = (
        select(ModerationAction)
        .where(ModerationAction.room_id == room_id)
        .order_by(ModerationAction.at.desc(), ModerationAction.id.desc())
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all()
