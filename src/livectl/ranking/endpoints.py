from __future__ import annotations

from fastapi import APIRouter

from livectl.auth.dependencies import Controller, Host, Player
from livectl.kit.clock import now_ms
from livectl.kit.ids import RoomIdPath
from livectl.ranking.schemas import RankingOut, Weights
from livectl.ranking.service import RankingService
from livectl.resources import Deps

router = APIRouter(prefix="/v1/rooms", tags=["ranking"])


@router.get("/{room}/ranking")
async def get_ranking(room: RoomIdPath, _: Player, deps: Deps) -> RankingOut:
    """The products in the order the room wants them now, with reasons, and the next one to
    explain."""
    return await RankingService(deps).ranking(room, now_ms())


@router.get("/{room}/ranking/weights")
async def get_weights(room: RoomIdPath, _: Host, deps: Deps) -> Weights:
    return await RankingService(deps).weights(room)


@router.put("/{room}/ranking/weights")
async def put_weights(
    room: RoomIdPath, weights: Weights, principal: Controller, deps: Deps
) -> Weights:
    """Set how much each signal counts in this room's order (fields left out keep defaults)."""
    return await RankingService(deps).set_weights(room, weights, principal)
