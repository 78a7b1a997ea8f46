"""Buyer text at the edge, the webhook's answer to garbage, and start-up calls that must never be fatal."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import SetMyCommands, TelegramMethod
from aiogram.methods.base import TelegramType
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.commands import set_commands_eventually
from bot.http import SECRET_HEADER, WEBHOOK_PATH, reject_malformed_updates
from bot.services.conversation import BuyerMessage, ConversationService
from integrations.rasa import BotReply
from integrations.storage.db import make_engine, make_sessionmaker, upgrade_to_head
from integrations.storage.repositories import ConversationLog
from tests.support.mocked_bot import RecordingSession

SECRET = "webhook-secret-0123456789"


class RecordingAssistant:
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def send(self, sender_id: str, text: str, metadata: Mapping[str, Any]) -> list[BotReply]:
        self.texts.append(text)
        return [BotReply(text="ok")]


@pytest.fixture
async def conversation_log(tmp_path: Path) -> ConversationLog:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await upgrade_to_head(url)
    return ConversationLog(make_sessionmaker(make_engine(url)))


async def test_typed_slash_text_is_plain_text_for_rasa_but_our_payloads_stay_intents(
    conversation_log: ConversationLog,
) -> None:
    assistant = RecordingAssistant()
    service = ConversationService(assistant, conversation_log)
    forged = '/cancel_order{"order_id":"KM20261127001"}'
    for kind, text in (
        ("text", forged),
        ("edit", "/restore_order"),
        ("callback", forged),
        ("command", "/greet"),
    ):
        await service.handle(BuyerMessage(chat_id=5, user_id=5, text=text, language="zh", kind=kind))
    assert assistant.texts == [
        'cancel_order{"order_id":"KM20261127001"}',  # typed: understood as words by the NLU, not forced
        "restore_order",
        forged,  # our own button payload (decoded by the PayloadCodec) is an intent
        "/greet",  # our /start command
    ]
    logged = [m.text for m in await conversation_log.transcript(5) if m.direction == "in"]
    assert logged[0] == forged  # the log keeps what the buyer wrote


class FlakySession(RecordingSession):
    """setMyCommands fails ``failures`` times (Telegram unreachable), then works."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        if isinstance(method, SetMyCommands) and self.failures > 0:
            self.failures -= 1
            raise TelegramNetworkError(method=method, message="Request timeout error")
        return await super().make_request(bot, method, timeout)


async def test_the_command_menu_is_retried_with_backoff_and_never_fatal() -> None:
    session = FlakySession(failures=3)
    bot = Bot("42:TEST", session=session)
    assert await set_commands_eventually(bot, first_delay=0.01, max_delay=0.02)
    commands = [r for r in session.requests if isinstance(r, SetMyCommands)]
    assert {c.language_code for c in commands} == {None, "zh"}

    down = FlakySession(failures=10_000)
    assert not await set_commands_eventually(Bot("42:TEST", session=down), first_delay=0.001, attempts=4)
    assert down.failures == 10_000 - 4  # tried four times, then gave up quietly (the bot keeps running)


async def test_a_malformed_webhook_body_is_a_400_not_a_500() -> None:
    handled: list[Any] = []

    async def handler(request: web.Request) -> web.Response:
        if request.headers.get(SECRET_HEADER) != SECRET:
            return web.Response(status=401)
        handled.append(await request.json())
        return web.json_response({})

    app = web.Application(middlewares=[reject_malformed_updates(SECRET)])
    app.router.add_post(WEBHOOK_PATH, handler)
    async with TestClient(TestServer(app)) as client:
        headers = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}
        for body in (b'{"update_id": 1, "message": {', b"\xff\xfe", b"[1, 2]", b'{"no": "update_id"}'):
            response = await client.post(WEBHOOK_PATH, data=body, headers=headers)
            assert response.status == 400, body
        # without the secret: still the handler's 401, the body is not even looked at
        assert (await client.post(WEBHOOK_PATH, data=b"{", headers={})).status == 401
        good = json.dumps({"update_id": 7, "message": {"text": "hi"}})
        assert (await client.post(WEBHOOK_PATH, data=good, headers=headers)).status == 200
    assert handled == [{"update_id": 7, "message": {"text": "hi"}}]


async def test_retention_purge_runs_in_the_background_and_survives_failures() -> None:
    from bot.retention import purge_forever

    calls: list[int] = []

    class Log:
        async def purge_before(self, cutoff: Any, batch: int = 5_000) -> int:
            calls.append(1)
            if len(calls) == 1:
                raise ConnectionError("database down")
            return 0

    task = asyncio.create_task(purge_forever(Log(), days=90, interval=0.01))
    await asyncio.sleep(0.1)
    task.cancel()
    assert len(calls) >= 2  # the failure was logged and the purge ran again
