"""What a process holds while it runs: made in the lifespan, closed in reverse order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, WebSocket
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from livectl.bus.connection import open_redis
from livectl.bus.publish import Publisher
from livectl.config import Settings
from livectl.store.engine import create_engine, create_sessionmaker


@dataclass
class Resources:
    settings: Settings
    redis: Redis
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    publisher: Publisher


def require_urls(settings: Settings) -> tuple[str, str]:
    if not settings.redis_url or not settings.database_url:
        raise RuntimeError(
            "LIVECTL_REDIS_URL and LIVECTL_DATABASE_URL must be set "
            "(`livectl up` starts embedded servers and sets them for you)"
        )
    return settings.redis_url, settings.database_url


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    redis_url, database_url = require_urls(settings)
    redis = open_redis(settings, redis_url)
    engine = create_engine(database_url)
    try:
        yield Resources(
            settings=settings,
            redis=redis,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            publisher=Publisher(redis, settings),
        )
    finally:
        await engine.dispose()
        await redis.aclose()


def _resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


def socket_resources(websocket: WebSocket) -> Resources:
    resources: Resources = websocket.app.state.resources
    return resources


Deps = Annotated[Resources, Depends(_resources)]
