from __future__ import annotations

from pydantic import BaseModel

from livectl.coupons.schemas import DropFigures
from livectl.opinion.schemas import AlertOut
from livectl.rooms.schemas import RoomOut
from livectl.stats.schemas import FunnelRow, StatsMinuteOut, StatsOut


class ProductReport(FunnelRow):
    name: str


class CouponReport(DropFigures):
    started_at: int
    ended_at: int | None


class QuestionReport(BaseModel):
    intent: str
    label: str
    count: int
    samples: list[str]


class ModerationReport(BaseModel):
    hidden: int
    muted_users: int
    by_reason: dict[str, int]


class ReportOut(BaseModel):
    room: RoomOut
    generated_at: int
    totals: StatsOut
    minutes: list[StatsMinuteOut]
    products: list[ProductReport]
    coupons: list[CouponReport]
    alerts: list[AlertOut]
    questions: list[QuestionReport]
    moderation: ModerationReport
