from __future__ import annotations

from livectl.coupons.service import CouponService
from livectl.kit.clock import now_ms
from livectl.moderation import repository as moderation_repository
from livectl.opinion.service import AlertService
from livectl.opinion.windows import Windows, question_items
from livectl.report.schemas import (
    CouponReport,
    ModerationReport,
    ProductReport,
    QuestionReport,
    ReportOut,
)
from livectl.resources import Resources
from livectl.rooms.service import RoomCache
from livectl.stats.schemas import StatsMinuteOut, StatsOut
from livectl.stats.service import StatsService

# Alerts are rate-limited per signal (one per 2 minutes), so a long live stays far below this.
_MOST_ALERTS = 1000


async def room_report(resources: Resources, room: str) -> ReportOut:
    """A live's report, so far for a live room, final for an ended one."""
    state = await RoomCache(resources).state(room)  # 404 for an unknown room
    now = now_ms()
    stats = StatsService(resources)
    minutes = [StatsMinuteOut.model_validate(row) for row in await stats.minutes(room)]
    # An ended live's last minute was rolled up at its end, so PostgreSQL's record gives the
    # final figures even if Redis has lost them since.
    if state.room.status == "ended" and minutes:
        totals = minutes[-1].stats
    else:
        totals = StatsOut.model_validate(await stats.current(room, now))
    names = {product.id: product.name for product in state.products}
    products = [
        ProductReport(name=names[row.product_id], **row.model_dump())
        for row in totals.funnel
        if row.product_id in names
    ]
    coupons = [
        CouponReport(started_at=drop.created_at, ended_at=drop.ended_at, **view.model_dump())
        for drop, view in await CouponService(resources).history(room)
    ]
    alerts = await AlertService(resources).alerts(room, "all", _MOST_ALERTS)
    questions = question_items(await Windows(resources.redis).live_questions(room))
    async with resources.sessionmaker() as session:
        by_reason, muted = await moderation_repository.hide_and_mute_counts(session, room)
    return ReportOut(
        room=state.room,
        generated_at=now,
        totals=totals,
        minutes=minutes,
        products=products,
        coupons=coupons,
        alerts=alerts[::-1],  # oldest first: the report reads as a timeline
        questions=[QuestionReport.model_validate(item) for item in questions],
        moderation=ModerationReport(
            hidden=sum(by_reason.values()), muted_users=muted, by_reason=by_reason
        ),
    )
