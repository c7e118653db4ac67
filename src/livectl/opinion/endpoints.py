from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from livectl.auth.dependencies import Assistant, Controller, Host
from livectl.kit.ids import ID_PATTERN, RoomIdPath
from livectl.opinion.schemas import AlertFilter, AlertOut, WatchlistIn, WatchlistOut
from livectl.opinion.service import AlertService, WatchlistService
from livectl.resources import Deps

router = APIRouter(prefix="/v1/rooms", tags=["opinion"])

AlertIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="alert id")]


@router.get("/{room}/alerts")
async def list_alerts(
    room: RoomIdPath,
    _: Host,
    deps: Deps,
    status: AlertFilter = "active",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AlertOut]:
    """Newest first. ``status``: open, acked, resolved, active (open or acked, the default)
    or all."""
    return await AlertService(deps).alerts(room, status, limit)


@router.post("/{room}/alerts/{alert_id}/ack")
async def ack_alert(
    room: RoomIdPath, alert_id: AlertIdPath, caller: Assistant, deps: Deps
) -> AlertOut:
    """Acknowledge (idempotent; 409 alert_resolved once resolved)."""
    return await AlertService(deps).transition(room, alert_id, "ack", caller.sub)


@router.post("/{room}/alerts/{alert_id}/resolve")
async def resolve_alert(
    room: RoomIdPath, alert_id: AlertIdPath, caller: Assistant, deps: Deps
) -> AlertOut:
    """Resolve an open or acknowledged alert (idempotent)."""
    return await AlertService(deps).transition(room, alert_id, "resolve", caller.sub)


@router.get("/{room}/watchlist")
async def get_watchlist(room: RoomIdPath, _: Assistant, deps: Deps) -> WatchlistOut:
    return await WatchlistService(deps).get(room)


@router.put("/{room}/watchlist")
async def put_watchlist(
    room: RoomIdPath, body: WatchlistIn, caller: Controller, deps: Deps
) -> WatchlistOut:
    """Replace the room's watchlist (the default list until a room sets its own)."""
    return await WatchlistService(deps).put(room, body, caller)
