from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from livectl.errors import ServiceUnavailable
from livectl.resources import Deps

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(deps: Deps) -> dict[str, str]:
    """Redis and PostgreSQL both answer (503 otherwise)."""
    try:
        await deps.redis.ping()
    except RedisError as exc:
        raise ServiceUnavailable(f"redis: {exc}") from exc
    try:
        async with deps.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:
        raise ServiceUnavailable(f"postgres: {exc}") from exc
    return {"status": "ready"}


@router.get("/metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
