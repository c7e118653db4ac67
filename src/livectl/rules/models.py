from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from livectl.store.base import Base


class RuleSetVersion(Base):
    """Every rule set a room was given, by whom: the newest version is the one in force."""

    __tablename__ = "rule_sets"

    room_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    rules: Mapped[dict[str, Any]] = mapped_column(JSONB)
    set_by: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[int] = mapped_column(BigInteger)


class RuleFiring(Base):
    """A rule that fired, why, and how far its actions got (``actions_done`` of them, in order)."""

    __tablename__ = "rule_firings"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(64), ForeignKey("rooms.id", ondelete="CASCADE"))
    rule_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[int] = mapped_column(BigInteger)
    offset_ms: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    dry_run: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))  # pending | done | dry_run
    actions_done: Mapped[int] = mapped_column(Integer)
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_rule_firings_room_at", "room_id", "at"),
        Index("ix_rule_firings_pending", "status", postgresql_where="status = 'pending'"),
    )
