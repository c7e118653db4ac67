"""per-minute stats rollups

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 18:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stats_minutes",
        sa.Column("room_id", sa.String(length=64), nullable=False),
        sa.Column("minute_ms", sa.BigInteger(), nullable=False),
        sa.Column("stats", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("room_id", "minute_ms", name=op.f("pk_stats_minutes")),
    )


def downgrade() -> None:
    op.drop_table("stats_minutes")
