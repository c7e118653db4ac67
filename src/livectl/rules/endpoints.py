from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from livectl.auth.dependencies import Controller, Host
from livectl.kit.body import read_body
from livectl.kit.ids import RoomIdPath
from livectl.resources import Deps
from livectl.rules.schemas import FiringOut, RuleSetIn, RuleSetOut
from livectl.rules.service import FiringService, RuleService

router = APIRouter(prefix="/v1/rooms", tags=["rules"])

_MAX_RULES_BYTES = 256 * 1024


@router.get("/{room}/rules")
async def get_rules(room: RoomIdPath, _: Host, deps: Deps) -> RuleSetOut:
    """The rule set in force (version 0, no rules, before the first PUT)."""
    return await RuleService(deps).get(room)


@router.put(
    "/{room}/rules",
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": RuleSetIn.model_json_schema()}}}
    },
)
async def put_rules(
    room: RoomIdPath, request: Request, caller: Controller, deps: Deps
) -> RuleSetOut:
    """Replace the room's rules with a new version. A bad rule set is refused whole with 422
    ``invalid_rules`` naming the rule and the field."""
    service = RuleService(deps)
    rules = service.parse(await read_body(request, _MAX_RULES_BYTES))
    await service.check_references(room, rules)
    return await service.put(room, rules, caller)


@router.get("/{room}/rules/firings")
async def list_firings(
    room: RoomIdPath, _: Host, deps: Deps, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[FiringOut]:
    """Newest first: every rule that fired, why, and what its actions did."""
    return await FiringService(deps).firings(room, limit)
