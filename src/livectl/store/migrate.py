"""Applying the Alembic revisions in ``migrations/`` (shipped in the wheel as ``_migrations``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

import livectl


def migrations_dir() -> Path:
    packaged = Path(livectl.__file__).parent / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(livectl.__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    # ConfigParser interpolation would read '%' in a password as a directive.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "heads") -> None:
    """Blocking (Alembic runs its own event loop): call before starting yours."""
    command.upgrade(alembic_config(database_url), revision)
