"""The ingest appender against a real Redis: which frames share a stream entry, and that the
stream keeps the order they were submitted in."""

from __future__ import annotations

import asyncio

from livectl.bus.keys import RoomKeys
from livectl.ingest.appender import Appender
from livectl.ingest.entries import unpack_entry
from livectl.ingest.validation import parse_batch
from livectl.kit import codec
from livectl.resources import Resources
from tests.conftest import chat, duplicates, unique, xrange


def _frame(*ids: str, text: str = "还有吗") -> bytes:
    return codec.dumps([chat(text, event_id=event_id) for event_id in ids])


async def _entries(resources: Resources, room: str) -> list[list[str]]:
    """The event ids of each entry of the room's stream, in stream order."""
    return [
        [item.key for item in unpack_entry(entry_id.decode(), fields)]
        for entry_id, fields in await xrange(resources.redis, RoomKeys(room).events)
    ]


async def test_frames_submitted_while_a_flush_is_out_share_the_next_entry(
    resources: Resources,
) -> None:
    room = unique("appender")
    appender = Appender(resources.redis, resources.settings)
    first = appender.submit(room, parse_batch(_frame("a"), max_events=1000), duplicates)
    await asyncio.sleep(0)  # the first flush is out, waiting for Redis
    assert not first.done()
    later = [
        appender.submit(room, parse_batch(_frame(f"b{i}", f"c{i}"), max_events=1000), duplicates)
        for i in range(50)
    ]
    assert await asyncio.gather(first, *later) == [0] * 51  # no duplicates
    await appender.close()
    assert await _entries(resources, room) == [
        ["a"],
        [event for i in range(50) for event in (f"b{i}", f"c{i}")],
    ]


async def test_a_backlog_past_the_entry_size_is_cut_between_frames_in_order(
    resources: Resources,
) -> None:
    room = unique("appender")
    appender = Appender(resources.redis, resources.settings)
    appender.submit(room, parse_batch(_frame("a"), max_events=1000), duplicates)
    await asyncio.sleep(0)
    # 40 frames of 40 events of about 500 bytes: more than one entry's 512 KB waits behind
    # the first flush.
    frames = [[f"b{i}-{k}" for k in range(40)] for i in range(40)]
    backlog = [
        appender.submit(
            room, parse_batch(_frame(*ids, text="x" * 480), max_events=1000), duplicates
        )
        for ids in frames
    ]
    await asyncio.gather(*backlog)
    await appender.close()
    entries = await _entries(resources, room)
    assert entries[0] == ["a"]
    assert len(entries) >= 3  # the backlog took more than one entry
    stored = [event for entry in entries[1:] for event in entry]
    assert stored == [event for ids in frames for event in ids]
    # Cut between frames: every entry starts with a frame's first event.
    assert all(entry[0].endswith("-0") for entry in entries[1:])
