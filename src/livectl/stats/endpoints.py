from __future__ import annotations

from fastapi import APIRouter

from livectl.auth.dependencies import Host
from livectl.kit.clock import now_ms
from livectl.kit.ids import RoomIdPath
from livectl.resources import Deps
from livectl.stats.schemas import StatsMinuteOut, StatsOut
from livectl.stats.service import StatsService

router = APIRouter(prefix="/v1/rooms", tags=["stats"])


@router.get("/{room}/stats")
async def get_stats(room: RoomIdPath, _: Host, deps: Deps) -> StatsOut:
    """The room's live numbers now: the same figures as the console's `stats` message."""
    return StatsOut.model_validate(await StatsService(deps).current(room, now_ms()))


@router.get("/{room}/stats/minutes")
async def get_stats_minutes(room: RoomIdPath, _: Host, deps: Deps) -> list[StatsMinuteOut]:
    """The figures as they stood at the end of each minute of the live, oldest first."""
    return [StatsMinuteOut.model_validate(row) for row in await StatsService(deps).minutes(room)]
