"""Fixtures for the sandbox tests: one live sandbox on a throwaway PostgreSQL database per session."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from integrations.platform import PlatformClient
from sandbox.db import Database
from sandbox.settings import SandboxSettings
from sandbox.testing import (
    DEFAULT_POSTGRES_ADMIN_URL,
    BackgroundServer,
    LiveSandbox,
    SandboxAdmin,
    WebhookRecorder,
    temporary_postgres_database,
)

API_KEY = "test-api-key"
ADMIN_KEY = "test-admin-key"
FROZEN_AT = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
"""12:00 China time: daytime SLAs apply."""


def sandbox_settings(database_url: str, **overrides: Any) -> SandboxSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "api_key": API_KEY,
        "admin_key": ADMIN_KEY,
        "seed": True,
        "simulate": False,
        "rate_limit_per_second": 0,
        "webhook_poll_seconds": 0.05,
        "webhook_retry_base_seconds": 0.1,
        "webhook_retry_max_seconds": 0.5,
        "webhook_allowed_hosts": "127.0.0.1,localhost",
    }
    values.update(overrides)
    return SandboxSettings(_env_file=None, **values)


@pytest.fixture(scope="session")
def settings_factory() -> Callable[..., SandboxSettings]:
    """``sandbox_settings`` for tests that start a sandbox of their own."""
    return sandbox_settings


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The maintenance database of the test PostgreSQL server (trust auth on loopback by default)."""
    return os.environ.get("SANDBOX_TEST_POSTGRES_URL", DEFAULT_POSTGRES_ADMIN_URL)


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    with temporary_postgres_database(postgres_admin_url, prefix="sandbox_tests") as url:
        yield url


@pytest.fixture(scope="session")
def live_sandbox(postgres_url: str) -> Iterator[LiveSandbox]:
    with LiveSandbox(sandbox_settings(postgres_url)) as live:
        yield live


@pytest.fixture(scope="session")
def fuzz_sandbox(postgres_admin_url: str) -> Iterator[LiveSandbox]:
    """A sandbox of its own for fuzzing (whatever the fuzzer does cannot disturb other tests).

    Webhook delivery is off: fuzzed subscriptions must not make the sandbox send requests anywhere.
    """
    with (
        temporary_postgres_database(postgres_admin_url, prefix="sandbox_fuzz") as url,
        LiveSandbox(sandbox_settings(url, webhook_delivery=False)) as live,
    ):
        yield live


@pytest.fixture
async def admin(live_sandbox: LiveSandbox) -> AsyncIterator[SandboxAdmin]:
    """Admin client; the database is reset to the seeds with the clock frozen at FROZEN_AT."""
    async with SandboxAdmin(live_sandbox.url, ADMIN_KEY) as client:
        await client.reset(FROZEN_AT)
        yield client


@pytest.fixture
async def platform(live_sandbox: LiveSandbox, admin: SandboxAdmin) -> AsyncIterator[PlatformClient]:
    async with PlatformClient(live_sandbox.url, API_KEY, backoff=0) as client:
        yield client


@pytest.fixture
async def http(live_sandbox: LiveSandbox, admin: SandboxAdmin) -> AsyncIterator[httpx.AsyncClient]:
    """Raw HTTP with the API key, for checks below the client's abstraction."""
    async with httpx.AsyncClient(base_url=live_sandbox.url, headers={"X-API-Key": API_KEY}) as client:
        yield client


@pytest.fixture
async def database(postgres_url: str, admin: SandboxAdmin) -> AsyncIterator[Database]:
    """Direct access to the live sandbox's database, for assertions the API does not expose."""
    db = Database(postgres_url)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookRecorder]:
    """A recording webhook endpoint on its own loopback server; ``.url`` is set on the instance."""
    recorder = WebhookRecorder()
    with BackgroundServer(recorder.app) as server:
        recorder.url = f"{server.url}/hook"
        yield recorder
