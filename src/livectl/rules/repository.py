"""Rule sets and firings in PostgreSQL: the only place in this domain with SQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from livectl.rules.models import RuleFiring, RuleSetVersion


async def latest_rule_set(session: AsyncSession, room_id: str) -> RuleSetVersion | None:
    query = (
        select(RuleSetVersion)
        .where(RuleSetVersion.room_id == room_id)
        .order_by(RuleSetVersion.version.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def add_rule_set(session: AsyncSession, row: RuleSetVersion) -> None:
    session.add(row)
    await session.flush()


async def next_version(session: AsyncSession, room_id: str) -> int:
    """Call with the room row locked: two PUTs then cannot take the same number."""
    query = select(func.coalesce(func.max(RuleSetVersion.version), 0)).where(
        RuleSetVersion.room_id == room_id
    )
    return int((await session.execute(query)).scalar_one()) + 1


async def insert_firing(session: AsyncSession, row: dict[str, Any]) -> None:
    """Idempotent: a firing recorded again (its claim recovered twice) is left as it is."""
    await session.execute(insert(RuleFiring).values(row).on_conflict_do_nothing())


async def get_firing(session: AsyncSession, firing_id: str) -> RuleFiring | None:
    return await session.get(RuleFiring, firing_id)


async def lock_firing(session: AsyncSession, firing_id: str) -> RuleFiring | None:
    """The firing, locked until the transaction ends: one worker at a time runs its actions."""
    query = select(RuleFiring).where(RuleFiring.id == firing_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def list_firings(session: AsyncSession, room_id: str, limit: int) -> Sequence[RuleFiring]:
    query = (
        select(RuleFiring)
        .where(RuleFiring.room_id == room_id)
        .order_by(RuleFiring.at.desc(), RuleFiring.id)
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all()
