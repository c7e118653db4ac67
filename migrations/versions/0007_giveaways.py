"""giveaways (福袋) with their committed seed, entries and winners

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 20:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "giveaways",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("room_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("prize", sa.String(length=200), nullable=False),
        sa.Column("winners", sa.Integer(), nullable=False),
        sa.Column("entry", sa.String(length=16), nullable=False),
        sa.Column("keyword", sa.String(length=50), nullable=True),
        sa.Column("audience", sa.String(length=8), nullable=False),
        sa.Column("seed", sa.String(length=64), nullable=False),
        sa.Column("commitment", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("ends_at", sa.BigInteger(), nullable=False),
        sa.Column("close_reason", sa.String(length=16), nullable=True),
        sa.Column("drawn_at", sa.BigInteger(), nullable=True),
        sa.Column("entries", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("entries_hash", sa.String(length=64), nullable=True),
        sa.Column("winner_ids", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.CheckConstraint("winners > 0", name=op.f("ck_giveaways_positive_winners")),
        sa.ForeignKeyConstraint(
            ["room_id"], ["rooms.id"], name=op.f("fk_giveaways_room_id_rooms"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_giveaways")),
        sa.UniqueConstraint("room_id", "key", name="uq_giveaways_room_key"),
    )
    op.create_index(op.f("ix_giveaways_room_id"), "giveaways", ["room_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_giveaways_room_id"), table_name="giveaways")
    op.drop_table("giveaways")
