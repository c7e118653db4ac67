"""The console relay: viewers' chat, out to the consoles as ``chat`` messages.

Later concerns (sentiment, tags, moderation) annotate these messages; this worker owns
putting them on the console stream exactly once per stream entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from livectl.bus.consumer import Entry
from livectl.bus.publish import Message, Publisher
from livectl.ingest.entries import RoomEvent, unpack_entry

GROUP = "console-relay"


def chat_message(item: RoomEvent) -> Message:
    event = item.event
    data: dict[str, Any] = {
        "event_id": item.key,
        "user": event["user"],
        "text": event["text"],
        "ts": event["ts"],
        "hidden": False,
    }
    return Message("chat", data)


class ConsoleRelay:
    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher

    async def handle(self, room: str, entries: Sequence[Entry]) -> None:
        # One publish per stream entry, guarded by the entry id, so a redelivered entry is
        # never shown twice even if the first delivery published and then crashed before ack.
        await self._publisher.publish_once(
            room,
            [
                (
                    f"{GROUP}:{entry.id}",
                    [
                        chat_message(item)
                        for item in unpack_entry(entry.id, entry.fields)
                        if item.event["type"] == "chat"
                    ],
                )
                for entry in entries
            ],
        )
