"""The database schema comes from Alembic and matches the ORM; the committed OpenAPI matches the app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from sandbox.db import Database
from sandbox.migrate import alembic_config, upgrade_to_head
from sandbox.openapi import openapi_document, render
from sandbox.tables import Base
from sandbox.testing import temporary_postgres_database_async

REPO = Path(__file__).resolve().parents[2]


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "version_table": "sandbox_alembic_version"}
    )
    return list(compare_metadata(context, Base.metadata))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def _downgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, "base")


async def _round_trip(url: str) -> None:
    db = Database(url)
    db.prepare()
    try:
        await upgrade_to_head(db.engine)
        await upgrade_to_head(db.engine)  # a second start is a no-op
        async with db.engine.connect() as connection:
            assert await connection.run_sync(_diff) == []
            assert "orders" in await connection.run_sync(_tables)
        async with db.engine.begin() as connection:
            await connection.run_sync(_downgrade)
        async with db.engine.connect() as connection:
            assert await connection.run_sync(_tables) <= {"sandbox_alembic_version"}
    finally:
        await db.dispose()


@pytest.mark.integration
async def test_migrations_match_the_models_on_postgres(postgres_admin_url: str) -> None:
    async with temporary_postgres_database_async(postgres_admin_url, prefix="sandbox_migrations") as url:
        await _round_trip(url)


async def test_migrations_match_the_models_on_sqlite(tmp_path: Path) -> None:
    await _round_trip(f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'sandbox.db'}")


def test_committed_openapi_matches_the_app() -> None:
    committed = (REPO / "docs" / "openapi.json").read_text(encoding="utf-8")
    generated = render(openapi_document())
    assert json.loads(committed) == json.loads(generated), "regenerate with: python -m sandbox.openapi"
    assert committed == generated
