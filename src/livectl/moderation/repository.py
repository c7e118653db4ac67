"""Moderation settings and the moderation log in PostgreSQL: the only SQL of this domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, distinct, func, select
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


async def hide_and_mute_counts(session: AsyncSession, room_id: str) -> tuple[dict[str, int], int]:
    """Hidden messages by reason (``manual`` for a staff hide) and distinct muted viewers."""
    reason = case((ModerationAction.action == "hide", "manual"), else_=ModerationAction.target)
    hidden = await session.execute(
        select(reason, func.count())
        .where(
            ModerationAction.room_id == room_id,
            ModerationAction.action.in_(("hide", "auto_hide")),
        )
        .group_by(reason)
    )
    muted = await session.execute(
        select(func.count(distinct(ModerationAction.target))).where(
            ModerationAction.room_id == room_id, ModerationAction.action == "mute"
        )
    )
    return {str(name): int(n) for name, n in hidden.all()}, int(muted.scalar_one())
