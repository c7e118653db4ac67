from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from livectl.store.base import Base


class ModerationSettings(Base):
    """A room's blocked words (on top of the default list) and slow mode."""

    __tablename__ = "moderation_settings"

    room_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    blocked_words: Mapped[list[str]] = mapped_column(ARRAY(Text))
    slow_mode_s: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[int] = mapped_column(BigInteger)


class ModerationAction(Base):
    """Every moderation action, with who did it (a staff member, or ``system``)."""

    __tablename__ = "moderation_actions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    room_id: Mapped[str] = mapped_column(String(64), ForeignKey("rooms.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(32))  # settings | mute | hide | auto_hide
    target: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB)
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_moderation_actions_room_at", "room_id", "at"),)
