"""The coupon record: templates, drops and the claim ledger.

The ledger itself refuses an oversell: an ordinal is unique per drop and at most the drop's
quantity, a user's claims are numbered 1..per_user and unique, and the quantity and per_user
copied into each claim must match the drop's (a composite foreign key).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from livectl.store.base import Base


class CouponTemplate(Base):
    __tablename__ = "coupon_templates"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    room_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("rooms.id", ondelete="CASCADE"), index=True
    )
    terms: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(BigInteger)


class CouponDrop(Base):
    __tablename__ = "coupon_drops"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    room_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("rooms.id", ondelete="CASCADE"), index=True
    )
    template_id: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[int] = mapped_column(BigInteger)
    min_spend: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    per_user: Mapped[int] = mapped_column(Integer)
    audience: Mapped[str] = mapped_column(String(8))
    product_ids: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    valid_ms: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(BigInteger)
    ends_at: Mapped[int] = mapped_column(BigInteger)
    ended_at: Mapped[int | None] = mapped_column(BigInteger)
    end_reason: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (
        UniqueConstraint("id", "quantity", "per_user", name="uq_coupon_drops_terms"),
        CheckConstraint("quantity > 0 AND per_user > 0", name="positive_counts"),
    )


class CouponClaim(Base):
    __tablename__ = "coupon_claims"

    claim_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    drop_id: Mapped[str] = mapped_column(String(64))
    room_id: Mapped[str] = mapped_column(String(64))
    ordinal: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str] = mapped_column(String(64))
    user_ordinal: Mapped[int] = mapped_column(Integer)
    per_user: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    redeemed_at: Mapped[int | None] = mapped_column(BigInteger)
    order_id: Mapped[str | None] = mapped_column(String(64))
    order_amount: Mapped[int | None] = mapped_column(BigInteger)
    discount: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        UniqueConstraint("drop_id", "ordinal", name="uq_coupon_claims_ordinal"),
        UniqueConstraint("drop_id", "user_id", "user_ordinal", name="uq_coupon_claims_user"),
        CheckConstraint("ordinal BETWEEN 1 AND quantity", name="within_quantity"),
        CheckConstraint("user_ordinal BETWEEN 1 AND per_user", name="within_per_user"),
        ForeignKeyConstraint(
            ["drop_id", "quantity", "per_user"],
            ["coupon_drops.id", "coupon_drops.quantity", "coupon_drops.per_user"],
            name="fk_coupon_claims_drop_terms",
            ondelete="CASCADE",
        ),
    )
