"""coupons: templates, drops and the claim ledger

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 18:02:14.217860

The ledger refuses an oversell by itself: unique (drop, ordinal) and (drop, user,
user_ordinal), ordinals within quantity and per_user, which must match the drop's.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coupon_drops",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("room_id", sa.String(length=64), nullable=False),
        sa.Column("template_id", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("min_spend", sa.BigInteger(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("per_user", sa.Integer(), nullable=False),
        sa.Column("audience", sa.String(length=8), nullable=False),
        sa.Column("product_ids", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("valid_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("ends_at", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.CheckConstraint(
            "quantity > 0 AND per_user > 0", name=op.f("ck_coupon_drops_positive_counts")
        ),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["rooms.id"],
            name=op.f("fk_coupon_drops_room_id_rooms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_drops")),
        sa.UniqueConstraint("id", "quantity", "per_user", name="uq_coupon_drops_terms"),
    )
    op.create_index(op.f("ix_coupon_drops_room_id"), "coupon_drops", ["room_id"], unique=False)
    op.create_table(
        "coupon_templates",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("room_id", sa.String(length=64), nullable=False),
        sa.Column("terms", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["rooms.id"],
            name=op.f("fk_coupon_templates_room_id_rooms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupon_templates")),
    )
    op.create_index(
        op.f("ix_coupon_templates_room_id"), "coupon_templates", ["room_id"], unique=False
    )
    op.create_table(
        "coupon_claims",
        sa.Column("claim_id", sa.String(length=32), nullable=False),
        sa.Column("drop_id", sa.String(length=64), nullable=False),
        sa.Column("room_id", sa.String(length=64), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("user_ordinal", sa.Integer(), nullable=False),
        sa.Column("per_user", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("redeemed_at", sa.BigInteger(), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("order_amount", sa.BigInteger(), nullable=True),
        sa.Column("discount", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "ordinal BETWEEN 1 AND quantity", name=op.f("ck_coupon_claims_within_quantity")
        ),
        sa.CheckConstraint(
            "user_ordinal BETWEEN 1 AND per_user", name=op.f("ck_coupon_claims_within_per_user")
        ),
        sa.ForeignKeyConstraint(
            ["drop_id", "quantity", "per_user"],
            ["coupon_drops.id", "coupon_drops.quantity", "coupon_drops.per_user"],
            name="fk_coupon_claims_drop_terms",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("claim_id", name=op.f("pk_coupon_claims")),
        sa.UniqueConstraint("code", name=op.f("uq_coupon_claims_code")),
        sa.UniqueConstraint("drop_id", "ordinal", name="uq_coupon_claims_ordinal"),
        sa.UniqueConstraint("drop_id", "user_id", "user_ordinal", name="uq_coupon_claims_user"),
    )


def downgrade() -> None:
    op.drop_table("coupon_claims")
    op.drop_index(op.f("ix_coupon_templates_room_id"), table_name="coupon_templates")
    op.drop_table("coupon_templates")
    op.drop_index(op.f("ix_coupon_drops_room_id"), table_name="coupon_drops")
    op.drop_table("coupon_drops")
