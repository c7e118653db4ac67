"""The giveaway record: terms, the secret seed (published only with the draw), the sorted
entry list with its hash, and the winners."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from livectl.store.base import Base


class Giveaway(Base):
    __tablename__ = "giveaways"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    room_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("rooms.id", ondelete="CASCADE"), index=True
    )
    # What started it once (a rule firing id): a second start with the same key is the first.
    key: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(100))
    prize: Mapped[str] = mapped_column(String(200))
    winners: Mapped[int] = mapped_column(Integer)
    entry: Mapped[str] = mapped_column(String(16))
    keyword: Mapped[str | None] = mapped_column(String(50))
    audience: Mapped[str] = mapped_column(String(8))
    seed: Mapped[str] = mapped_column(String(64))
    commitment: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(BigInteger)
    ends_at: Mapped[int] = mapped_column(BigInteger)
    close_reason: Mapped[str | None] = mapped_column(String(16))
    drawn_at: Mapped[int | None] = mapped_column(BigInteger)
    entries: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    entries_hash: Mapped[str | None] = mapped_column(String(64))
    winner_ids: Mapped[list[str] | None] = mapped_column(ARRAY(Text))

    __table_args__ = (
        UniqueConstraint("room_id", "key", name="uq_giveaways_room_key"),
        CheckConstraint("winners > 0", name="positive_winners"),
    )
