"""Errors raised while starting the embedded Redis and PostgreSQL."""

from __future__ import annotations


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be started or stopped."""


class DataDirInUseError(EmbeddedServiceError):
    """Another process already runs embedded services on the same data directory."""
