"""The migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic import command

from livectl.store.migrate import alembic_config


def test_models_and_migrations_agree(database_url: str) -> None:
    # Raises if autogenerate would write a new revision: a model changed without one.
    command.check(alembic_config(database_url))
