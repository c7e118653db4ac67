from __future__ import annotations

import asyncio
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Request, WebSocket
from pydantic import BaseModel, ValidationError

from livectl.auth.dependencies import Assistant, Controller, Player, authorize_socket
from livectl.auth.tokens import Role
from livectl.coupons.batcher import ClaimAnswer, ClaimBatcher
from livectl.coupons.claims import ClaimRequest
from livectl.coupons.schemas import (
    DROP_ID_PATTERN,
    MAX_CLAIMS_PER_FRAME,
    ClaimIn,
    ClaimOut,
    DropFigures,
    DropFromTemplate,
    DropOut,
    DropTerms,
    SocketClaim,
    TemplateOut,
)
from livectl.coupons.service import CouponService
from livectl.errors import (
    InvalidBody,
    InvalidJson,
    LivectlError,
    ValidationFailed,
    describe_validation_errors,
    error_body,
)
from livectl.kit import codec
from livectl.kit.body import read_body
from livectl.kit.frames import answer_frames
from livectl.kit.ids import RoomIdPath
from livectl.resources import Deps
from livectl.store.engine import transaction

router = APIRouter(prefix="/v1/rooms", tags=["coupons"])

CouponIdPath = Annotated[str, Path(pattern=DROP_ID_PATTERN, description="coupon drop id")]
Model = TypeVar("Model", bound=BaseModel)

_MAX_COMMAND_BYTES = 64 * 1024
# DropTerms is in the OpenAPI components (the templates endpoint takes it); the template form
# has no nested models, so it is written out in place.
_DROP_BODY = {
    "anyOf": [
        {"$ref": "#/components/schemas/DropTerms"},
        DropFromTemplate.model_json_schema(),
    ]
}


def _batcher(state: Any) -> ClaimBatcher:
    batcher: ClaimBatcher = state.claims
    return batcher


def _parse(model: type[Model], data: Any) -> Model:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(describe_validation_errors(exc.errors())) from exc


def _json(raw: bytes | str) -> Any:
    try:
        return codec.loads(raw)
    except codec.JSONDecodeError as exc:
        raise InvalidJson(f"not JSON: {exc}") from exc


@router.post("/{room}/coupon-templates", status_code=201)
async def save_template(
    room: RoomIdPath, terms: DropTerms, caller: Controller, deps: Deps
) -> TemplateOut:
    """Save a drop's terms so an assistant can drop it with one click."""
    async with transaction(deps.sessionmaker) as tx:
        return await CouponService(deps).save_template(tx, room, terms, caller)


@router.get("/{room}/coupon-templates")
async def list_templates(room: RoomIdPath, _: Assistant, deps: Deps) -> list[TemplateOut]:
    return await CouponService(deps).templates(room)


@router.post(
    "/{room}/coupons",
    status_code=201,
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _DROP_BODY}}}
    },
)
async def drop_coupon(room: RoomIdPath, request: Request, caller: Assistant, deps: Deps) -> DropOut:
    """Drop a flash coupon: full terms (controller) or ``{"template_id"}`` (assistant)."""
    data = _json(await read_body(request, _MAX_COMMAND_BYTES))
    if not isinstance(data, dict):
        raise InvalidBody("the body must be a JSON object")
    body: DropTerms | DropFromTemplate = (
        _parse(DropFromTemplate, data) if "template_id" in data else _parse(DropTerms, data)
    )
    async with transaction(deps.sessionmaker) as tx:
        return await CouponService(deps).drop(tx, room, body, caller)


@router.get("/{room}/coupons")
async def list_coupons(room: RoomIdPath, _: Player, deps: Deps) -> list[DropFigures]:
    return await CouponService(deps).drops(room)


@router.get("/{room}/coupons/{coupon}")
async def get_coupon(room: RoomIdPath, coupon: CouponIdPath, _: Player, deps: Deps) -> DropFigures:
    """A drop with its figures: claimed, redeemed, GMV with the coupon, cost and ROI."""
    return await CouponService(deps).get(room, coupon)


@router.post("/{room}/coupons/{coupon}/stop")
async def stop_coupon(
    room: RoomIdPath, coupon: CouponIdPath, _: Assistant, deps: Deps
) -> DropFigures:
    return await CouponService(deps).stop(room, coupon)


@router.post(
    "/{room}/coupons/{coupon}/claims",
    status_code=201,
    responses={
        403: {"description": "not_eligible"},
        404: {"description": "not_found"},
        409: {"description": "sold_out, limit_reached, idempotency_key_reused"},
        410: {"description": "ended"},
    },
)
async def claim_coupon(
    room: RoomIdPath, coupon: CouponIdPath, body: ClaimIn, request: Request, _: Player
) -> ClaimOut:
    """Claim for a viewer. The same ``idempotency_key`` answers the first answer again."""
    wanted = ClaimRequest(coupon, body.user_id, body.idempotency_key)
    (answer,) = await _batcher(request.app.state).claim(room, [wanted])
    if isinstance(answer, LivectlError):
        raise answer
    return answer


def _socket_answer(answer: ClaimAnswer) -> dict[str, Any]:
    if isinstance(answer, LivectlError):
        return {"status": answer.status, **error_body(answer.code, answer.detail)}
    return {"status": 201, **answer.model_dump()}


async def _claim_frame(batcher: ClaimBatcher, room: str, text: str) -> dict[str, Any]:
    data = _json(text)
    items = data if isinstance(data, list) else [data]
    if not items or len(items) > MAX_CLAIMS_PER_FRAME:
        raise InvalidBody(f"a frame holds one claim or an array of 1..{MAX_CLAIMS_PER_FRAME}")
    answers: list[ClaimAnswer | None] = []
    requests: list[ClaimRequest] = []
    for item in items:
        try:
            claim = _parse(SocketClaim, item)
        except LivectlError as exc:
            answers.append(exc)
            continue
        answers.append(None)
        requests.append(ClaimRequest(claim.coupon_id, claim.user_id, claim.idempotency_key))
    decided = iter(await batcher.claim(room, requests) if requests else [])
    results = [_socket_answer(a if a is not None else next(decided)) for a in answers]
    if isinstance(data, list):
        return {"type": "claims", "results": results}
    return {"type": "claim", **results[0]}


async def _claim_text(batcher: ClaimBatcher, room: str, text: str) -> str:
    return codec.dumps_str(await _claim_frame(batcher, room, text))


@router.websocket("/{room}/claims")
async def claim_socket(websocket: WebSocket, room: RoomIdPath) -> None:
    """Claims for viewers at volume (player and up): each text frame is one claim
    ``{"coupon_id", "user_id", "idempotency_key"?}`` or an array of up to 1000, answered in
    order with ``{"type": "claim", "status", ...}`` or ``{"type": "claims", "results"}``."""
    if await authorize_socket(websocket, Role.PLAYER, room) is None:
        return
    batcher = _batcher(websocket.app.state)

    async def answer(text: str) -> asyncio.Future[str]:
        # Claims of different frames are independent: each frame is decided as it comes.
        return asyncio.ensure_future(_claim_text(batcher, room, text))

    await answer_frames(websocket, "claims", answer)
