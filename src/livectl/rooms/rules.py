"""A room's lifecycle, as a pure decision: created -> live -> ended."""

from __future__ import annotations

from typing import Literal

from livectl.errors import Conflict

RoomAction = Literal["start", "end"]


class RoomEnded(Conflict):
    code = "room_ended"


class RoomNotLive(Conflict):
    code = "room_not_live"


def next_status(current: str, action: RoomAction) -> str | None:
    """The status the action leads to, None if the room is there already (actions are
    idempotent), or the conflict that forbids it."""
    if action == "start":
        if current == "ended":
            raise RoomEnded("this live has ended; create a new room for the next one")
        return "live" if current == "created" else None
    if current == "created":
        raise RoomNotLive("the room has not gone live")
    return "ended" if current == "live" else None
