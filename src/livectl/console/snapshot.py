"""The first message of a fresh connection: everything a console needs to draw the room."""

from __future__ import annotations

from typing import Any

from livectl.opinion.service import AlertService
from livectl.resources import Resources
from livectl.rooms.service import RoomCache


async def console_snapshot(resources: Resources, room: str) -> dict[str, Any]:
    state = await RoomCache(resources).state(room)
    products = [p.model_dump() for p in state.products]
    return {
        "room": state.room.model_dump(),
        "products": products,
        "pinned": state.room.pinned_product_id,
        # Filled by the stats, coupons and opinion workers as they land (see the issues).
        "stats": {},
        "coupons": [],
        "alerts": [
            a.model_dump() for a in await AlertService(resources).alerts(room, "active", 50)
        ],
    }


async def live_snapshot(resources: Resources, room: str) -> dict[str, Any]:
    """The viewer-safe subset: no stats beyond what viewers see, no alerts, no moderation."""
    state = await RoomCache(resources).state(room)
    pinned = next((p for p in state.products if p.id == state.room.pinned_product_id), None)
    return {
        "room": state.room.model_dump(include={"id", "title", "currency", "status"}),
        "pinned": pinned.model_dump(include={"id", "name", "price", "sold_out"})
        if pinned
        else None,
        "coupons": [],
    }
