"""Shared fixtures: throw-away PostgreSQL databases and a clean Redis database on this machine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from redis.asyncio import Redis

from tests.support.pg import create_database, drop_database

TEST_REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test."""
    name, url = create_database("kmbot_test")
    try:
        yield url
    finally:
        drop_database(name)


@pytest_asyncio.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(TEST_REDIS_URL)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()
