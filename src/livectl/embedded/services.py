"""Start the Redis and PostgreSQL that are not configured, for a laptop that has neither."""

from __future__ import annotations

import atexit
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ._lock import DataDirLock
from ._postgres import PostgresServer
from ._redis import RedisServer

logger = logging.getLogger("livectl.embedded")


@dataclass(frozen=True)
class ServiceUrls:
    redis_url: str
    """e.g. ``redis://127.0.0.1:54321/0``"""
    database_url: str
    """SQLAlchemy async URL, e.g. ``postgresql+asyncpg://postgres@/postgres?host=/socket/dir``"""


class EmbeddedServices:
    """Starts whichever of Redis/PostgreSQL is not configured; stops them in reverse order.

    Data lives in ``<data_dir>/redis`` and ``<data_dir>/postgres``. With ``persistent`` it
    survives restarts (Redis append-only file, PostgreSQL data directory kept); without it Redis
    keeps nothing and the PostgreSQL data directory is deleted on stop. While anything runs,
    ``<data_dir>/livectl.lock`` is locked, so a second instance on the same directory fails with
    :class:`DataDirInUseError` instead of sharing the files.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        redis_url: str | None,
        database_url: str | None,
        persistent: bool = True,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.redis_url = redis_url
        self.database_url = database_url
        self.persistent = persistent
        self._lock = DataDirLock(self.data_dir)
        self._redis: RedisServer | None = None
        self._postgres: PostgresServer | None = None
        self._urls: ServiceUrls | None = None

    @property
    def urls(self) -> ServiceUrls | None:
        """The URLs of the running services, or None before start and after stop."""
        return self._urls

    def start(self) -> ServiceUrls:
        """Start what is missing and return the URLs; configured ones are passed through as is.

        Calling it again while running returns the same URLs.
        """
        if self._urls is not None:
            return self._urls
        if self.redis_url is not None and self.database_url is not None:
            self._urls = ServiceUrls(redis_url=self.redis_url, database_url=self.database_url)
            return self._urls

        started = time.monotonic()
        self._lock.acquire()
        atexit.register(self.stop)
        try:
            redis_url = self.redis_url
            if redis_url is None:
                self._redis = RedisServer(self.data_dir / "redis", persistent=self.persistent)
                redis_url = self._redis.start()
            database_url = self.database_url
            if database_url is None:
                self._postgres = PostgresServer(
                    self.data_dir / "postgres", persistent=self.persistent
                )
                database_url = self._postgres.start()
        except BaseException:
            self.stop()
            raise
        self._urls = ServiceUrls(redis_url=redis_url, database_url=database_url)
        logger.info("embedded services ready in %.2f s", time.monotonic() - started)
        return self._urls

    def stop(self) -> None:
        """Stop what :meth:`start` started, PostgreSQL before Redis. Safe to call repeatedly."""
        self._urls = None
        postgres, self._postgres = self._postgres, None
        redis, self._redis = self._redis, None
        try:
            if postgres is not None:
                postgres.stop()
        finally:
            try:
                if redis is not None:
                    redis.stop()
            finally:
                self._lock.release()
                atexit.unregister(self.stop)

    def __enter__(self) -> ServiceUrls:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
