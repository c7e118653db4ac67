"""Every ORM model, imported so the metadata Alembic compares against is complete."""

from __future__ import annotations

from livectl.archive.models import ArchivedEvent
from livectl.coupons.models import CouponClaim, CouponDrop, CouponTemplate
from livectl.giveaways.models import Giveaway
from livectl.moderation.models import ModerationAction, ModerationSettings
from livectl.opinion.models import Alert, RoomWatchlist
from livectl.ranking.models import RankingWeights
from livectl.rooms.models import Product, Room
from livectl.rules.models import RuleFiring, RuleSetVersion
from livectl.stats.models import StatsMinute
from livectl.store.base import Base

metadata = Base.metadata

__all__ = [
    "Alert",
    "ArchivedEvent",
    "CouponClaim",
    "CouponDrop",
    "CouponTemplate",
    "Giveaway",
    "ModerationAction",
    "ModerationSettings",
    "Product",
    "RankingWeights",
    "Room",
    "RoomWatchlist",
    "RuleFiring",
    "RuleSetVersion",
    "StatsMinute",
    "metadata",
]
