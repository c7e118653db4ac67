"""opinion alerts, watchlists, moderation settings and the moderation log

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 18:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _room_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["room_id"], ["rooms.id"], name=op.f(f"fk_{table}_room_id_rooms"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("room_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("samples", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("figures", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("acked_by", sa.String(length=200), nullable=True),
        sa.Column("acked_at", sa.BigInteger(), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        _room_fk("alerts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index("ix_alerts_room_status_created", "alerts", ["room_id", "status", "created_at"])
    op.create_table(
        "watchlists",
        sa.Column("room_id", sa.String(length=64), nullable=False),
        sa.Column("categories", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        _room_fk("watchlists"),
        sa.PrimaryKeyConstraint("room_id", name=op.f("pk_watchlists")),
    )
    op.create_table(
        "moderation_settings",
        sa.Column("room_id", sa.String(length=64), nullable=False),
        sa.Column("blocked_words", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("slow_mode_s", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        _room_fk("moderation_settings"),
        sa.PrimaryKeyConstraint("room_id", name=op.f("pk_moderation_settings")),
    )
    op.create_table(
        "moderation_actions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("room_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        _room_fk("moderation_actions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderation_actions")),
    )
    op.create_index("ix_moderation_actions_room_at", "moderation_actions", ["room_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_moderation_actions_room_at", table_name="moderation_actions")
    op.drop_table("moderation_actions")
    op.drop_table("moderation_settings")
    op.drop_table("watchlists")
    op.drop_index("ix_alerts_room_status_created", table_name="alerts")
    op.drop_table("alerts")
