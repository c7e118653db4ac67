"""Reading the room event stream back: one entry holds a batch of accepted events."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from livectl.ingest.appender import parse_indexes
from livectl.kit import codec

# An entry can hold a thousand events: a worker applies a few entries per Redis round trip
# rather than a whole read, so one big batch does not hold the event loop (and the other
# rooms' reads, whose Redis timeouts run meanwhile) for seconds.
ENTRIES_PER_ROUND_TRIP = 16


@dataclass(frozen=True, slots=True)
class RoomEvent:
    entry_id: str
    index: int
    event: dict[str, Any]

    @property
    def key(self) -> str:
        """Stable across redeliveries: the event's own id, else its place in the stream."""
        return str(self.event.get("id") or f"{self.entry_id}.{self.index}")


def entry_ms(entry_id: str) -> int:
    return int(entry_id.partition("-")[0])


def entry_events(fields: Mapping[bytes, bytes]) -> list[dict[str, Any]]:
    """Only the events, minus duplicates, as stored: for counting workers that need neither
    an event's key nor its ``ts`` (half the cost of ``unpack_entry`` per event)."""
    events: list[dict[str, Any]] = codec.loads(fields[b"e"])
    skip = parse_indexes(fields.get(b"x", b""))
    if skip:
        dropped = set(skip)
        return [event for index, event in enumerate(events) if index not in dropped]
    return events


def unpack_entry(entry_id: str, fields: Mapping[bytes, bytes]) -> Iterator[RoomEvent]:
    """The entry's events minus duplicates; ``ts`` defaults to when the entry was appended
    (the gateway stamps no time itself: the entry id already is server time)."""
    skip = set(parse_indexes(fields.get(b"x", b"")))
    appended_at = entry_ms(entry_id)
    for index, event in enumerate(codec.loads(fields[b"e"])):
        if index in skip:
            continue
        if not event.get("ts"):
            event["ts"] = appended_at
        yield RoomEvent(entry_id, index, event)
