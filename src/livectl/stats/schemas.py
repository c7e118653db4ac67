from __future__ import annotations

from pydantic import BaseModel


class FunnelRow(BaseModel):
    product_id: str
    exposure_s: int
    mentions: int
    clicks: int
    carts: int
    orders: int
    quantity: int
    gmv: int
    clicks_per_exposure_min: float
    cart_rate: float
    order_rate: float
    click_to_order: float


class StatsOut(BaseModel):
    """A room's live numbers (docs/api.md, "Live numbers"); the `stats` message's data."""

    online: int
    uv: int
    views: int
    likes: int
    comments: int
    follows: int
    shares: int
    orders: int
    items: int
    gmv: int
    aov: int
    gpm: int
    conversion: float
    new_viewer_share: float
    fan_share: float
    avg_dwell_s: float
    comments_per_min: int
    likes_per_min: int
    orders_per_min: int
    gmv_per_min: int
    views_per_min: int
    funnel: list[FunnelRow]


class StatsMinuteOut(BaseModel):
    minute: int  # the minute's start, ms
    stats: StatsOut
