from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from livectl.auth.dependencies import Assistant, Controller, Player
from livectl.auth.tokens import Principal, Role, role_allows
from livectl.giveaways.schemas import (
    GIVEAWAY_ID_PATTERN,
    GiveawayAudit,
    GiveawayDetail,
    GiveawayOut,
    GiveawaySpec,
)
from livectl.giveaways.service import GiveawayService
from livectl.kit.ids import RoomIdPath
from livectl.resources import Deps

router = APIRouter(prefix="/v1/rooms", tags=["giveaways"])

GiveawayIdPath = Annotated[str, Path(pattern=GIVEAWAY_ID_PATTERN, description="giveaway id")]


def _for(caller: Principal, view: GiveawayDetail) -> GiveawayDetail | GiveawayOut:
    """Staff (host and up) see who started it; players only the public part."""
    if role_allows(caller.role, Role.HOST):
        return view
    return GiveawayOut.model_validate(view.model_dump(include=set(GiveawayOut.model_fields)))


@router.post("/{room}/giveaways", status_code=201)
async def start_giveaway(
    room: RoomIdPath, spec: GiveawaySpec, caller: Controller, deps: Deps
) -> GiveawayDetail:
    """Start a giveaway (福袋) in a live room; its seed's sha256 is published now, the seed
    itself with the draw."""
    return await GiveawayService(deps).start(room, spec, caller.sub)


@router.get("/{room}/giveaways")
async def list_giveaways(
    room: RoomIdPath, caller: Player, deps: Deps
) -> list[GiveawayDetail | GiveawayOut]:
    return [_for(caller, view) for view in await GiveawayService(deps).giveaways(room)]


@router.get("/{room}/giveaways/{giveaway}")
async def get_giveaway(
    room: RoomIdPath, giveaway: GiveawayIdPath, caller: Player, deps: Deps
) -> GiveawayDetail | GiveawayOut:
    return _for(caller, await GiveawayService(deps).get(room, giveaway))


@router.post("/{room}/giveaways/{giveaway}/close")
async def close_giveaway(
    room: RoomIdPath, giveaway: GiveawayIdPath, _: Assistant, deps: Deps
) -> GiveawayDetail:
    """Close entries now; the draw follows as soon as every earlier event is applied."""
    return await GiveawayService(deps).close(room, giveaway)


@router.get("/{room}/giveaways/{giveaway}/audit")
async def audit_giveaway(
    room: RoomIdPath, giveaway: GiveawayIdPath, _: Player, deps: Deps
) -> GiveawayAudit:
    """The published draw: seed, sorted entries and their hash, winners. Re-run it with
    ``livectl.giveaways.rules.verify``. 409 ``not_drawn`` before the draw."""
    return await GiveawayService(deps).audit(room, giveaway)
