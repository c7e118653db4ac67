"""Every ORM model, imported so the metadata Alembic compares against is complete."""

from __future__ import annotations

from livectl.archive.models import ArchivedEvent
from livectl.moderation.models import ModerationAction, ModerationSettings
from livectl.opinion.models import Alert, RoomWatchlist
from livectl.rooms.models import Product, Room
from livectl.store.base import Base

metadata = Base.metadata

__all__ = [
    "Alert",
    "ArchivedEvent",
    "ModerationAction",
    "ModerationSettings",
    "Product",
    "Room",
    "RoomWatchlist",
    "metadata",
]
