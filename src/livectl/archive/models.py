from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from livectl.store.base import Base


class ArchivedEvent(Base):
    """Every accepted event, keyed by its place in the room stream so a redelivered entry
    is archived once (the client's own id may be absent, or reused after the dedupe window)."""

    __tablename__ = "events"

    room_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    entry_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    entry_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(16))
    ts: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)

    __table_args__ = (Index("ix_events_room_ts", "room_id", "ts"),)
