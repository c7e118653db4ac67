from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from livectl.auth.dependencies import Assistant, Controller
from livectl.kit.ids import ID_PATTERN, RoomIdPath
from livectl.moderation.schemas import ActionOut, ModerationIn, ModerationOut, MuteIn, MuteOut
from livectl.moderation.service import ModerationService
from livectl.resources import Deps

router = APIRouter(prefix="/v1/rooms", tags=["moderation"])

UserIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="user id")]
EventIdPath = Annotated[str, Path(pattern=ID_PATTERN, description="chat message event_id")]


@router.get("/{room}/moderation")
async def get_moderation(room: RoomIdPath, _: Assistant, deps: Deps) -> ModerationOut:
    return await ModerationService(deps).settings(room)


@router.put("/{room}/moderation")
async def put_moderation(
    room: RoomIdPath, body: ModerationIn, caller: Controller, deps: Deps
) -> ModerationOut:
    """The room's blocked words (on top of the default list) and slow mode (0 = off)."""
    return await ModerationService(deps).put_settings(room, body, caller)


@router.post("/{room}/mutes", status_code=201)
async def mute_user(room: RoomIdPath, body: MuteIn, caller: Assistant, deps: Deps) -> MuteOut:
    """Hide a viewer's chat until ``seconds`` from now."""
    return await ModerationService(deps).mute(room, body, caller)


@router.delete("/{room}/mutes/{user_id}", status_code=204)
async def unmute_user(
    room: RoomIdPath, user_id: UserIdPath, caller: Assistant, deps: Deps
) -> Response:
    await ModerationService(deps).unmute(room, user_id, caller)
    return Response(status_code=204)


@router.post("/{room}/messages/{event_id}/hide", status_code=204)
async def hide_message(
    room: RoomIdPath, event_id: EventIdPath, caller: Assistant, deps: Deps
) -> Response:
    """Remove a chat message from every console (a ``moderation`` message tells them)."""
    await ModerationService(deps).hide(room, event_id, caller)
    return Response(status_code=204)


@router.get("/{room}/moderation/actions")
async def list_actions(
    room: RoomIdPath,
    _: Assistant,
    deps: Deps,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ActionOut]:
    """The moderation log, newest first: who muted, hid or changed what."""
    return await ModerationService(deps).actions(room, limit)
