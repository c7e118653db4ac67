"""Coupon templates, drops and the claim ledger in PostgreSQL: the only place here with SQL."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from livectl.coupons.models import CouponClaim, CouponDrop, CouponTemplate
from livectl.coupons.rules import ClaimRecord, Redemption
from livectl.store.bulk import insert_new_rows


async def add(session: AsyncSession, row: CouponTemplate | CouponDrop) -> None:
    session.add(row)
    await session.flush()


async def get_template(
    session: AsyncSession, room_id: str, template_id: str
) -> CouponTemplate | None:
    query = select(CouponTemplate).where(
        CouponTemplate.room_id == room_id, CouponTemplate.id == template_id
    )
    return (await session.execute(query)).scalar_one_or_none()


async def list_templates(session: AsyncSession, room_id: str) -> Sequence[CouponTemplate]:
    query = (
        select(CouponTemplate)
        .where(CouponTemplate.room_id == room_id)
        .order_by(CouponTemplate.created_at, CouponTemplate.id)
    )
    return (await session.execute(query)).scalars().all()


async def get_drop(session: AsyncSession, room_id: str, drop_id: str) -> CouponDrop | None:
    query = select(CouponDrop).where(CouponDrop.room_id == room_id, CouponDrop.id == drop_id)
    return (await session.execute(query)).scalar_one_or_none()


async def list_drops(
    session: AsyncSession, room_id: str, *, unsettled_only: bool = False
) -> Sequence[CouponDrop]:
    query = select(CouponDrop).where(CouponDrop.room_id == room_id)
    if unsettled_only:
        query = query.where(CouponDrop.ended_at.is_(None))
    return (
        (await session.execute(query.order_by(CouponDrop.created_at, CouponDrop.id)))
        .scalars()
        .all()
    )


async def rooms_with_unsettled_drops(session: AsyncSession) -> Sequence[str]:
    query = select(CouponDrop.room_id).where(CouponDrop.ended_at.is_(None)).distinct()
    return (await session.execute(query)).scalars().all()


async def record_end(session: AsyncSession, drop_id: str, reason: str, at: int) -> None:
    await session.execute(
        update(CouponDrop)
        .where(CouponDrop.id == drop_id, CouponDrop.ended_at.is_(None))
        .values(ended_at=at, end_reason=reason)
    )


# The ledger columns a claim fills when granted; redemption fills the rest later.
_CLAIM_COLUMNS = (
    "claim_id",
    "drop_id",
    "room_id",
    "ordinal",
    "quantity",
    "user_id",
    "user_ordinal",
    "per_user",
    "code",
    "idempotency_key",
    "claimed_at",
    "expires_at",
)


async def insert_claims(session: AsyncSession, room_id: str, claims: Sequence[ClaimRecord]) -> None:
    # A redelivered outbox entry inserts nothing twice; a claim colliding with another on its
    # ordinal or user_ordinal is refused by the unique constraints without failing the rest.
    records = [
        (
            c.claim_id,
            c.drop_id,
            room_id,
            c.ordinal,
            c.quantity,
            c.user_id,
            c.user_ordinal,
            c.per_user,
            c.code,
            c.idempotency_key,
            c.claimed_at,
            c.expires_at,
        )
        for c in claims
    ]
    await insert_new_rows(session, CouponClaim, _CLAIM_COLUMNS, records)


async def record_redemptions(session: AsyncSession, redemptions: Sequence[Redemption]) -> None:
    for r in redemptions:
        await session.execute(
            update(CouponClaim)
            .where(CouponClaim.code == r.code, CouponClaim.redeemed_at.is_(None))
            .values(
                redeemed_at=r.redeemed_at,
                order_id=r.order_id,
                order_amount=r.amount,
                discount=r.discount,
            )
        )


async def highest_ordinal(session: AsyncSession, drop_id: str) -> int:
    query = select(func.coalesce(func.max(CouponClaim.ordinal), 0)).where(
        CouponClaim.drop_id == drop_id
    )
    return int((await session.execute(query)).scalar_one())


async def drop_claims(session: AsyncSession, drop_id: str) -> Sequence[CouponClaim]:
    query = select(CouponClaim).where(CouponClaim.drop_id == drop_id).order_by(CouponClaim.ordinal)
    return (await session.execute(query)).scalars().all()
