from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query

from livectl.auth.dependencies import Assistant, Controller, Host, Player
from livectl.coupons.service import CouponService
from livectl.kit.clock import now_ms
from livectl.kit.ids import ProductIdPath, RoomIdPath
from livectl.ranking.service import RankingService
from livectl.resources import Deps, Resources
from livectl.rooms.rules import RoomAction
from livectl.rooms.schemas import PinOut, ProductIn, ProductOut, RoomCreate, RoomOut, RoomStatus
from livectl.rooms.service import RoomService
from livectl.stats.service import StatsService
from livectl.store.engine import transaction

router = APIRouter(prefix="/v1/rooms", tags=["rooms"])


@router.post("", status_code=201)
async def create_room(body: RoomCreate, caller: Controller, deps: Deps) -> RoomOut:
    async with transaction(deps.sessionmaker) as tx:
        return await RoomService(deps).create(tx, body, caller)


@router.get("")
async def list_rooms(
    caller: Host,
    deps: Deps,
    status: RoomStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[RoomOut]:
    """The rooms the token names (every room for `["*"]`), newest first."""
    return await RoomService(deps).rooms(caller, status, limit)


@router.get("/{room}")
async def get_room(room: RoomIdPath, _: Host, deps: Deps) -> RoomOut:
    return (await RoomService(deps).cache.state(room)).room


@router.post("/{room}/start")
async def start_room(room: RoomIdPath, _: Controller, deps: Deps) -> RoomOut:
    """Go live (idempotent; 409 room_ended once the live has ended)."""
    return await _transition(deps, room, "start")


@router.post("/{room}/end")
async def end_room(room: RoomIdPath, _: Controller, deps: Deps) -> RoomOut:
    """End the live (idempotent; 409 room_not_live before it started); its coupon drops end
    with it."""
    ended = await _transition(deps, room, "end")
    await CouponService(deps).close_room(room)
    # At the end's own time: ending again later rewrites that minute, never adds one.
    await StatsService(deps).roll_up_last_minute(room, ended.ended_at or now_ms())
    return ended


async def _transition(deps: Resources, room: str, action: RoomAction) -> RoomOut:
    service = RoomService(deps)
    async with transaction(deps.sessionmaker) as tx:
        await service.transition(tx, room, action)
    return (await service.cache.state(room)).room


@router.put("/{room}/products")
async def put_products(
    room: RoomIdPath,
    products: Annotated[list[ProductIn], Body(max_length=500)],
    _: Controller,
    deps: Deps,
) -> list[ProductOut]:
    service = RoomService(deps)
    async with transaction(deps.sessionmaker) as tx:
        await service.set_products(tx, room, products)
    return (await service.cache.state(room)).products


@router.get("/{room}/products")
async def get_products(room: RoomIdPath, _: Player, deps: Deps) -> list[ProductOut]:
    """The room's products in ranked order, each with its score and reasons."""
    products, _ranking = await RankingService(deps).ranked_products(room, now_ms())
    return products


@router.post("/{room}/products/{pid}/pin")
async def pin_product(room: RoomIdPath, pid: ProductIdPath, _: Host, deps: Deps) -> PinOut:
    return await RoomService(deps).pin(room, pid)


@router.delete("/{room}/products/{pid}/pin")
async def unpin_product(room: RoomIdPath, pid: ProductIdPath, _: Host, deps: Deps) -> PinOut:
    return await RoomService(deps).unpin(room, pid)


@router.post("/{room}/products/{pid}/sold-out")
async def mark_sold_out(
    room: RoomIdPath, pid: ProductIdPath, _: Assistant, deps: Deps
) -> list[ProductOut]:
    service = RoomService(deps)
    async with transaction(deps.sessionmaker) as tx:
        await service.mark_sold_out(tx, room, pid)
    return (await service.cache.state(room)).products
