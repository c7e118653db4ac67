from __future__ import annotations

from fastapi import APIRouter

from livectl.auth.dependencies import Host
from livectl.kit.ids import RoomIdPath
from livectl.report.schemas import ReportOut
from livectl.report.service import room_report
from livectl.resources import Deps

router = APIRouter(prefix="/v1/rooms", tags=["report"])


@router.get("/{room}/report")
async def get_report(room: RoomIdPath, _: Host, deps: Deps) -> ReportOut:
    """The post-live report (复盘): totals, per-minute figures, the product funnel, coupon
    results, the alert timeline, the live's questions and moderation counts. So far while the
    room is live; final once it has ended."""
    return await room_report(deps, room)
