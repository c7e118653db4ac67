"""The first message of a fresh connection: everything a console needs to draw the room."""

from __future__ import annotations

from typing import Any

from livectl.coupons.service import CouponService
from livectl.giveaways.service import GiveawayService
from livectl.kit.clock import now_ms
from livectl.opinion.service import AlertService
from livectl.opinion.windows import Windows
from livectl.ranking.service import RankingService
from livectl.resources import Resources
from livectl.rooms.service import RoomCache
from livectl.stats.rules import viewer_safe
from livectl.stats.service import StatsService


async def console_snapshot(resources: Resources, room: str) -> dict[str, Any]:
    state = await RoomCache(resources).state(room)
    now = now_ms()
    products, ranking = await RankingService(resources).ranked_products(room, now)
    return {
        "room": state.room.model_dump(),
        "products": [p.model_dump() for p in products],
        "recommended": ranking.recommended,
        "pinned": state.room.pinned_product_id,
        "stats": await StatsService(resources).current(room, now),
        "coupons": await CouponService(resources).live_coupons(room),
        "giveaways": await GiveawayService(resources).open_giveaways(room),
        "alerts": [
            a.model_dump() for a in await AlertService(resources).alerts(room, "active", 50)
        ],
        # The `questions` message's data as it stands, so a host view that opens mid-live
        # shows them at once rather than at the next change.
        "questions": await Windows(resources.redis).questions_message(room, now),
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
        "stats": viewer_safe(await StatsService(resources).current(room, now_ms())),
        "coupons": await CouponService(resources).live_coupons(room),
        "giveaways": await GiveawayService(resources).open_giveaways(room),
    }
