from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, WebSocket

from livectl.auth.dependencies import Ingest, authorize_socket
from livectl.auth.tokens import Role
from livectl.ingest.schemas import IngestResult, ingest_body_schema
from livectl.ingest.service import IngestService
from livectl.kit import codec
from livectl.kit.body import read_body
from livectl.kit.frames import answer_frames
from livectl.kit.futures import then
from livectl.kit.ids import RoomIdPath
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
    """One Event or an array of 1..1000 (body at most 1 MiB). A bad event rejects itself."""
    raw = await read_body(request, deps.settings.max_body_bytes)
    return await _service(request.app.state).ingest(room, raw)


@router.websocket("/{room}/ingest")
async def ingest_socket(websocket: WebSocket, room: RoomIdPath) -> None:
    """Text frames, each an Event or an array of Events; every frame is answered with an ack
    (or an error) in order."""
    if await authorize_socket(websocket, Role.INGEST, room) is None:
        return
    service = _service(websocket.app.state)

    async def answer(text: str) -> asyncio.Future[str]:
        return then(await service.submit(room, text), ack)

    await answer_frames(websocket, "ingest", answer)


def ack(result: IngestResult) -> str:
    # Built by hand: this runs once per frame on the hottest socket path.
    rejected = [rejection.model_dump() for rejection in result.rejected]
    return codec.dumps_str(
        {
            "type": "ack",
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": rejected,
        }
    )
