"""Telling a store that is down from a bug: the first is waited out and logged in one line,
the second is logged with its traceback (and, for stream entries, counted towards the
dead-letter cap)."""

from __future__ import annotations

import logging

import asyncpg.exceptions
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError

_OUTAGES: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
    BusyLoadingError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
)


def is_outage(exc: BaseException) -> bool:
    """A store down or unreachable, not a bad entry: the cause chain holds a lost connection."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, _OUTAGES):
            return True
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def log_failure(log: logging.Logger, exc: BaseException, message: str, *args: object) -> None:
    """One warning line for an outage (it repeats while the store is down), else the traceback."""
    if is_outage(exc):
        log.warning(message + ": a store is unavailable (%s: %s)", *args, type(exc).__name__, exc)
    else:
        log.exception(message, *args)
