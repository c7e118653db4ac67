"""A store that is down is told apart from a bad entry (pure)."""

from __future__ import annotations

import asyncpg.exceptions
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from sqlalchemy.exc import DBAPIError, IntegrityError

from livectl.kit.outages import is_outage


def raised_from(exc: BaseException, cause: BaseException) -> BaseException:
    try:
        raise exc from cause
    except BaseException as caught:
        return caught


@pytest.mark.parametrize(
    ("exc", "outage"),
    [
        (ConnectionRefusedError(), True),
        (FileNotFoundError(), True),  # a Unix socket gone with its server
        (TimeoutError(), True),
        (RedisConnectionError("gone"), True),
        (asyncpg.exceptions.CannotConnectNowError("starting up"), True),
        (asyncpg.exceptions.AdminShutdownError("shutting down"), True),
        (DBAPIError("SELECT 1", {}, Exception("lost"), connection_invalidated=True), True),
        (raised_from(RuntimeError("wrapped"), ConnectionResetError()), True),
        (DBAPIError("SELECT 1", {}, Exception("syntax")), False),
        (IntegrityError("INSERT", {}, Exception("duplicate key")), False),
        (ResponseError("WRONGTYPE"), False),
        (KeyError("type"), False),
        (raised_from(ValueError("bad entry"), KeyError("x")), False),
    ],
)
def test_outage_or_bad_entry(exc: BaseException, outage: bool) -> None:
    assert is_outage(exc) is outage
