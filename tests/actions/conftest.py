"""Fixtures for the action tests: the real sandbox platform in-process, the real outcome repository on SQLite,
every action built by the registry, the real domain, and one clock shared by the sandbox and the actions.

The sandbox app (its own SQLite database, migrated and seeded) is served through ``httpx.ASGITransport`` to a
real ``PlatformClient``: every action call goes over the platform API's HTTP contract, with the platform's
own ownership checks, validation and state machine behind it.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from rasa_sdk import Action

import actions.forms
import actions.info
import actions.order_status
import actions.texts
from actions.base import ActionDeps
from actions.registry import build_actions
from integrations.platform import PlatformClient
from integrations.storage.db import make_engine, make_sessionmaker, upgrade_to_head_sync
from integrations.storage.models import CancellationOutcome
from integrations.storage.repositories import CancellationOutcomes
from sandbox.app import create_app
from sandbox.runtime import Runtime
from sandbox.settings import SandboxSettings
from sandbox.testing import SandboxAdmin
from tests.actions.support import Chat

API_KEY = "actions-test-key"
ADMIN_KEY = "actions-test-admin"
SANDBOX_URL = "http://sandbox.test"
DOMAIN_FILE = Path(__file__).parents[2] / "nlu" / "domain.yml"

DAY = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
"""12:00 China time: daytime SLAs."""
NIGHT = datetime(2026, 11, 27, 17, 30, tzinfo=UTC)
"""01:30 China time (28 Nov): night SLAs for phone top-ups."""

CLOCKED_MODULES = (actions.forms, actions.info, actions.order_status, actions.texts, actions.escalation)


class Clock:
    """Sets the sandbox's clock and the actions' ``datetime.now`` to the same frozen instant."""

    def __init__(self, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
        self._runtime = runtime
        self.now = DAY
        clock = self

        class FrozenDatetime(datetime):
            @classmethod
            def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
                return clock.now.astimezone(tz) if tz is not None else clock.now.replace(tzinfo=None)

        for module in CLOCKED_MODULES:
            monkeypatch.setattr(module, "datetime", FrozenDatetime)

    async def reset(self, instant: datetime) -> None:
        """Wipe the platform and seed the demo data again, laid out relative to ``instant``."""
        await self._runtime.reset(instant)
        self.now = instant

    def advance(self, seconds: float) -> None:
        self._runtime.clock.advance(seconds)
        self.now = self._runtime.clock.now()


@pytest.fixture(scope="session")
def domain() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOMAIN_FILE.read_text(encoding="utf-8"))
    return loaded


def _sandbox_settings(path: Path, *, seed: bool) -> SandboxSettings:
    return SandboxSettings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite+aiosqlite:///{path}",
        api_key=API_KEY,
        admin_key=ADMIN_KEY,
        seed=seed,
        simulate=False,
        webhook_delivery=False,
        rate_limit_per_second=0,
    )


@pytest.fixture(scope="session")
def sandbox_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sandbox database migrated and seeded at DAY once; each test starts from a copy of it."""
    path = tmp_path_factory.mktemp("sandbox") / "template.db"

    async def prepare() -> None:
        runtime: Runtime = create_app(_sandbox_settings(path, seed=True)).state.runtime
        runtime.clock.set(DAY)
        await runtime.start()
        await runtime.stop()

    asyncio.run(prepare())
    return path


@pytest.fixture
async def sandbox(sandbox_template: Path, tmp_path: Path) -> AsyncIterator[FastAPI]:
    """The sandbox app on its own SQLite database with the demo data laid out at DAY (no background workers)."""
    path = tmp_path / "sandbox.db"
    shutil.copyfile(sandbox_template, path)
    app = create_app(_sandbox_settings(path, seed=False))
    runtime: Runtime = app.state.runtime
    runtime.clock.set(DAY)
    await runtime.start()
    try:
        yield app
    finally:
        await runtime.stop()


@pytest.fixture
def runtime(sandbox: FastAPI) -> Runtime:
    found: Runtime = sandbox.state.runtime
    return found


@pytest.fixture
def clock(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(runtime, monkeypatch)


@pytest.fixture
async def platform(sandbox: FastAPI, clock: Clock) -> AsyncIterator[PlatformClient]:
    transport = httpx.ASGITransport(app=sandbox)
    async with PlatformClient(SANDBOX_URL, API_KEY, transport=transport, backoff=0) as client:
        yield client


@pytest.fixture
async def admin(sandbox: FastAPI) -> AsyncIterator[SandboxAdmin]:
    async with SandboxAdmin(SANDBOX_URL, ADMIN_KEY, transport=httpx.ASGITransport(app=sandbox)) as client:
        yield client


@pytest.fixture(scope="session")
def bot_db_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bot's database migrated to head with Alembic once; each test gets a copy."""
    path = tmp_path_factory.mktemp("bot") / "template.db"
    upgrade_to_head_sync(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
async def outcomes(bot_db_template: Path, tmp_path: Path) -> AsyncIterator[CancellationOutcomes]:
    """The real outcome repository on the bot's own (SQLite) database."""
    path = tmp_path / "bot.db"
    shutil.copyfile(bot_db_template, path)
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        yield CancellationOutcomes(make_sessionmaker(engine))
    finally:
        await engine.dispose()


def build(deps: ActionDeps) -> dict[str, Action]:
    return {action.name(): action for action in build_actions(deps)}


@pytest.fixture
def actions_by_name(platform: PlatformClient, outcomes: CancellationOutcomes) -> dict[str, Action]:
    return build(ActionDeps(platform=platform, outcomes=outcomes, timezone="Asia/Shanghai"))


@pytest.fixture
def new_chat(domain: dict[str, Any]) -> Callable[..., Chat]:
    def make(language: str = "zh", **kwargs: Any) -> Chat:
        return Chat(domain, language=language, **kwargs)

    return make


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connections are refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def outcome_rows(
    outcomes: CancellationOutcomes, order_id: str
) -> list[tuple[str, str, str, str | None]]:
    """(reason_tag, outcome, detail, buyer_id) of the order's recorded cancellation outcomes, oldest first."""
    rows: list[CancellationOutcome] = await outcomes.for_order(order_id)
    return [(r.reason_tag, r.outcome, r.detail, r.buyer_id) for r in rows]
