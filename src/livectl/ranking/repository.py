"""Ranking weights in PostgreSQL: the only place in this domain with SQL."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from livectl.ranking.models import RankingWeights


async def get_weights(session: AsyncSession, room_id: str) -> RankingWeights | None:
    return await session.get(RankingWeights, room_id)


async def put_weights(session: AsyncSession, row: RankingWeights) -> None:
    values = {"weights": row.weights, "updated_by": row.updated_by, "updated_at": row.updated_at}
    await session.execute(
        insert(RankingWeights)
        .values(room_id=row.room_id, **values)
        .on_conflict_do_update(index_elements=[RankingWeights.room_id], set_=values)
    )
