from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from livectl.store.base import Base


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(64), ForeignKey("rooms.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))  # the signal: a category, negative, bot_wave
    level: Mapped[str] = mapped_column(String(16))  # info | warning | critical
    title: Mapped[str] = mapped_column(String(200))
    samples: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    figures: Mapped[dict[str, Any]] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(16))  # open | acked | resolved
    created_at: Mapped[int] = mapped_column(BigInteger)
    acked_by: Mapped[str | None] = mapped_column(String(200))
    acked_at: Mapped[int | None] = mapped_column(BigInteger)
    resolved_by: Mapped[str | None] = mapped_column(String(200))
    resolved_at: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_alerts_room_status_created", "room_id", "status", "created_at"),)


class RoomWatchlist(Base):
    """A room's own watchlist; a room without a row watches the default list."""

    __tablename__ = "watchlists"

    room_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    categories: Mapped[dict[str, list[str]]] = mapped_column(JSONB)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[int] = mapped_column(BigInteger)
