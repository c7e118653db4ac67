from __future__ import annotations

import functools
import time
from typing import Any

from fastapi import APIRouter, Request, WebSocket

from livectl.auth.dependencies import Ingest, authorize_socket, bearer_token, socket_token
from livectl.auth.tokens import Role
from livectl.errors import RateLimited
from livectl.ingest.schemas import IngestResult, ingest_body_schema
from livectl.ingest.service import IngestService
from livectl.ingest.validation import ParsedBatch
from livectl.kit import codec
from livectl.kit.body import read_body
from livectl.kit.frames import answer_frames
from livectl.kit.ids import RoomIdPath
from livectl.limits.rules import FixedWindow, token_id
from livectl.limits.service import GatewayLimits
from livectl.resources import Deps

router = APIRouter(prefix="/v1/rooms", tags=["ingest"])


def _service(app_state: object) -> IngestService:
    service: IngestService = app_state.ingest  # type: ignore[attr-defined]
    return service


@router.post(
    "/{room}/events",
    status_code=202,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ingest_body_schema()}},
        }
    },
)
async def post_events(room: RoomIdPath, request: Request, _: Ingest, deps: Deps) -> IngestResult:
    """One Event or an array of 1..1000 (body at most 1 MiB). A bad event rejects itself.
    Past the token's events per second: 429 ``rate_limited`` with ``Retry-After``."""
    raw = await read_body(request, deps.settings.max_body_bytes)
    token = token_id(bearer_token(request.headers.get("authorization")) or "")
    limits: GatewayLimits = request.app.state.limits

    async def admit(count: int) -> None:
        await limits.admit_events(token, count)

    return await _service(request.app.state).ingest(room, raw, admit)


@router.websocket("/{room}/ingest")
async def ingest_socket(websocket: WebSocket, room: RoomIdPath) -> None:
    """Text frames, each an Event or an array of Events; every frame is answered with an ack
    (or an error) in order. Past the events per second of the connection or of its token,
    the frame is answered ``rate_limited`` and the socket closed with 4029."""
    if await authorize_socket(websocket, Role.INGEST, room) is None:
        return
    service = _service(websocket.app.state)
    limits: GatewayLimits = websocket.app.state.limits
    token = token_id(socket_token(websocket) or "")
    per_socket = websocket.app.state.resources.settings.ingest_events_per_s_per_socket
    window = FixedWindow(per_socket)

    def admit_here(count: int) -> None:
        if not window.admit(count, time.time()):
            raise RateLimited(f"a connection may send {per_socket} events per second")

    # The token's limit first: it alone may need Redis, and declining then counts nothing.
    async def admit(count: int) -> None:
        await limits.admit_events(token, count)
        admit_here(count)

    def admit_now(count: int) -> bool:
        if not limits.admit_events_now(token, count):
            return False
        admit_here(count)
        return True

    await answer_frames(
        websocket,
        "ingest",
        lambda text: service.submit(room, text, admit, ack),
        lambda text: service.submit_now(room, text, admit_now, ack),
    )


def ack(batch: ParsedBatch, duplicates: int) -> str:
    # Built by hand: this runs once per frame on the hottest socket path.
    accepted = len(batch.events) - duplicates
    if not batch.rejected:
        return _clean_ack(accepted, duplicates)
    rejected = [rejection.model_dump() for rejection in batch.rejected]
    return _ack_text(accepted, duplicates, rejected)


@functools.lru_cache(maxsize=1024)
def _clean_ack(accepted: int, duplicates: int) -> str:
    # Most frames are a few events, all taken: their acks are a few strings, built once.
    return _ack_text(accepted, duplicates, [])


def _ack_text(accepted: int, duplicates: int, rejected: list[dict[str, Any]]) -> str:
    return codec.dumps_str(
        {"type": "ack", "accepted": accepted, "duplicates": duplicates, "rejected": rejected}
    )
