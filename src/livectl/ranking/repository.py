"""Ranking weights in PostgreSQL: the only place in this domain with SQL."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from livectl.ranking.models import RankingWeights
from livectl.store.base import put_row


async def get_weights(session: AsyncSession, room_id: str) -> RankingWeights | None:
    return await session.get(RankingWeights, room_id)


async def put_weights(session: AsyncSession, row: RankingWeights) -> None:
    await put_row(session, row)
