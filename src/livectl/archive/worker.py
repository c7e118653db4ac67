"""The archive: every accepted event into PostgreSQL, batched and idempotent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from livectl.archive import repository
from livectl.bus.consumer import Entry
from livectl.ingest.entries import RoomEvent, unpack_entry
from livectl.store.engine import transaction

GROUP = "archive"


def archive_row(room: str, item: RoomEvent) -> dict[str, Any]:
    ms, _, seq = item.entry_id.partition("-")
    event = item.event
    return {
        "room_id": room,
        "entry_ms": int(ms),
        "entry_seq": int(seq),
        "idx": item.index,
        "event_id": item.key,
        "type": event["type"],
        "ts": event["ts"],
        "user_id": event["user"]["id"],
        "body": event,
    }


class Archiver:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def handle(self, room: str, entries: Sequence[Entry]) -> None:
        rows = [
            archive_row(room, item)
            for entry in entries
            for item in unpack_entry(entry.id, entry.fields)
        ]
        async with transaction(self._sessionmaker) as tx:
            await repository.insert_events(tx.session, rows)
