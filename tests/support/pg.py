"""Throw-away PostgreSQL databases on the machine's real server."""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg

PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_USER = os.environ.get("TEST_PG_USER", "postgres")


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(host=PG_HOST, user=PG_USER, database="postgres")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def create_database(prefix: str) -> tuple[str, str]:
    """Create a uniquely named database; return (name, SQLAlchemy asyncpg URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return name, f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:5432/{name}"


def drop_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
