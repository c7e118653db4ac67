from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from livectl.store.base import Base


class StatsMinute(Base):
    """A room's figures as they stood at the end of each minute of the live."""

    __tablename__ = "stats_minutes"

    room_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # the minute's start
    stats: Mapped[dict[str, Any]] = mapped_column(JSONB)
