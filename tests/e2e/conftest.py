"""The whole stack for end-to-end tests: sandbox, action server, Rasa with the trained model, the bot, and a
local Telegram Bot API server on loopback that the bot polls through ``TELEGRAM_API_BASE``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from tests.botapi_double import BotAPIDouble
from tests.support.pg import create_database, drop_database
from tests.support.processes import ManagedProcess, ensure_model, free_port, stack_service

E2E_REDIS_URL = "redis://127.0.0.1:6379/12"
SANDBOX_API_KEY = "e2e-platform-key"
AGENTS_CHAT_ID = -1009000000001
"""The agents' forum supergroup (created in the Bot API double before the bot starts)."""
HANDOFF_MERCHANT_SLA_MINUTES = "0.25"


@dataclass
class Stack:
    env: dict[str, str]
    sandbox: ManagedProcess
    actions: ManagedProcess
    rasa: ManagedProcess

    @property
    def processes(self) -> list[ManagedProcess]:
        return [self.sandbox, self.actions, self.rasa]


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    model = ensure_model()
    sandbox_db, sandbox_url = create_database("kmbot_e2e_sandbox")
    bot_db, bot_url = create_database("kmbot_e2e_bot")
    ports = {
        name: free_port() for name in ("SANDBOX_PORT", "ACTION_SERVER_PORT", "RASA_PORT", "BOT_HTTP_PORT")
    }
    env = {
        **{name: str(port) for name, port in ports.items()},
        "SANDBOX_DATABASE_URL": sandbox_url,
        "SANDBOX_API_KEY": SANDBOX_API_KEY,
        "SANDBOX_SEED": "true",
        "PLATFORM_API_KEY": SANDBOX_API_KEY,
        "DATABASE_URL": bot_url,
        "REDIS_URL": E2E_REDIS_URL,
    }
    started: list[ManagedProcess] = []
    try:
        for name in ("sandbox", "actions", "rasa"):
            process = stack_service(name, env, model)
            started.append(process.start())
        for process in started:
            process.wait_healthy()
        yield Stack(env, *started)
    finally:
        for process in reversed(started):
            process.stop()
        drop_database(sandbox_db)
        drop_database(bot_db)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def telegram() -> AsyncIterator[BotAPIDouble]:
    async with BotAPIDouble() as double:
        yield double


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def bot(stack: Stack, telegram: BotAPIDouble) -> AsyncIterator[ManagedProcess]:
    """The bot as a real process polling the local Bot API server."""
    from redis.asyncio import Redis

    redis = Redis.from_url(E2E_REDIS_URL)
    await redis.flushdb()
    await redis.aclose()
    if AGENTS_CHAT_ID not in telegram.chats:
        telegram.create_supergroup("客服工作台", is_forum=True, chat_id=AGENTS_CHAT_ID)
    env = {
        **stack.env,
        "AGENTS_CHAT_ID": str(AGENTS_CHAT_ID),
        "HANDOFF_MERCHANT_SLA_MINUTES": HANDOFF_MERCHANT_SLA_MINUTES,
        "HANDOFF_BUSINESS_HOURS": "00:00-24:00",
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_API_BASE": telegram.base_url,
        "BOT_MODE": "polling",
    }
    process = stack_service("bot", env).start()
    try:
        # wait in a thread so this loop keeps serving the Bot API double the bot is calling
        await asyncio.to_thread(process.wait_healthy)
        await telegram.wait_for_call("getUpdates", timeout=30)
        yield process
    finally:
        process.stop()
