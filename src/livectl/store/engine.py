"""The database engine and the one place transactions commit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from livectl.kit import codec

AfterCommit = Callable[[], Awaitable[None]]


def create_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        json_serializer=codec.dumps_str,
        json_deserializer=codec.loads,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@dataclass
class Transaction:
    session: AsyncSession
    _after_commit: list[AfterCommit] = field(default_factory=list)

    def after_commit(self, callback: AfterCommit) -> None:
        """Run ``callback`` once the transaction has committed (publish to the bus there,
        never before, so consoles are never told about something that was rolled back)."""
        self._after_commit.append(callback)


@asynccontextmanager
async def transaction(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[Transaction]:
    async with sessionmaker() as session:
        tx = Transaction(session)
        try:
            yield tx
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
    for callback in tx._after_commit:
        await callback()
