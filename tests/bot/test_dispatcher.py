"""The dispatcher with its real routers, middlewares and storage, on a recording aiogram session."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.methods import AnswerCallbackQuery, EditMessageReplyMarkup
from aiogram.types import CallbackQuery, Chat, Message, Sticker, Update

from bot.app import build_dispatcher, build_services
from bot.kv import MemoryKeyValueStore
from bot.middlewares import OutgoingLogMiddleware
from integrations.platform.client import PlatformClient
from integrations.rasa import BotButton, BotReply, RasaUnavailable
from integrations.storage.db import make_engine, make_sessionmaker, upgrade_to_head
from integrations.storage.repositories import ConversationLog
from tests.support.mocked_bot import buyer, make_bot


def platform_stub(handler: Callable[[httpx.Request], httpx.Response] | None = None) -> PlatformClient:
    """The platform client on httpx.MockTransport: every call refused unless a handler is given."""
    default = lambda request: httpx.Response(404, json={"error": {"code": "not_found", "message": "x"}})  # noqa: E731
    return PlatformClient(
        "http://platform.test", "key", transport=httpx.MockTransport(handler or default), retries=0
    )


class FakeAssistant:
    def __init__(self, replies: list[BotReply] | Exception) -> None:
        self.replies = replies
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def send(self, sender_id: str, text: str, metadata: Mapping[str, Any]) -> list[BotReply]:
        self.calls.append((sender_id, text, dict(metadata)))
        if isinstance(self.replies, Exception):
            raise self.replies
        return self.replies


@pytest.fixture
async def conversation_log(tmp_path: Path) -> ConversationLog:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await upgrade_to_head(url)
    return ConversationLog(make_sessionmaker(make_engine(url)))


def text_update(text: str, update_id: int = 1, language: str = "zh-hans") -> Update:
    user = buyer(language=language)
    return Update(
        update_id=update_id,
        message=Message(
            message_id=update_id,
            date=datetime.now(UTC),
            chat=Chat(id=user.id, type="private"),
            from_user=user,
            text=text,
        ),
    )


async def run_update(update: Update, assistant: FakeAssistant, conversation_log: ConversationLog):  # type: ignore[no-untyped-def]
    bot, session = make_bot()
    session.middleware(OutgoingLogMiddleware(conversation_log))
    kv = MemoryKeyValueStore()
    services = build_services(assistant, conversation_log, kv, platform_stub())
    dispatcher = build_dispatcher(MemoryStorage(), services)
    await dispatcher.feed_update(bot, update)
    return session, services.codec, dispatcher, bot


async def test_text_goes_to_the_assistant_and_buttons_become_a_keyboard(
    conversation_log: ConversationLog,
) -> None:
    assistant = FakeAssistant(
        [BotReply(text="处理中", buttons=[BotButton(title="转人工", payload="/human_handoff")])]
    )
    session, codec, _, _ = await run_update(text_update("我的订单到哪了"), assistant, conversation_log)
    assert assistant.calls[0][0] == "tg-10001"
    assert assistant.calls[0][2]["language"] == "zh"
    assert assistant.calls[0][2]["telegram_user_id"] == 10001
    [sent] = session.sent()
    assert sent.text == "处理中"
    button = sent.reply_markup.inline_keyboard[0][0]  # type: ignore[union-attr]
    assert await codec.decode(button.callback_data or "") == "/human_handoff"
    logged = await conversation_log.transcript(10001)
    assert [(m.direction, m.text) for m in logged] == [("in", "我的订单到哪了"), ("out", "处理中")]


async def test_english_telegram_user_is_answered_in_english(conversation_log: ConversationLog) -> None:
    assistant = FakeAssistant(RasaUnavailable("down"))
    session, *_ = await run_update(
        text_update("where is my order", language="en"), assistant, conversation_log
    )
    assert assistant.calls[0][2]["language"] == "en"
    assert "assistant cannot answer" in session.sent()[0].text


async def test_rasa_down_still_answers_politely(conversation_log: ConversationLog) -> None:
    session, *_ = await run_update(
        text_update("在吗"), FakeAssistant(RasaUnavailable("down")), conversation_log
    )
    [sent] = session.sent()
    assert "暂时无法回复" in sent.text
    assert "Traceback" not in sent.text


async def test_empty_assistant_reply_is_never_silent(conversation_log: ConversationLog) -> None:
    session, *_ = await run_update(text_update("？？？"), FakeAssistant([]), conversation_log)
    assert len(session.sent()) == 1


async def test_button_press_is_answered_and_sent_as_payload(conversation_log: ConversationLog) -> None:
    assistant = FakeAssistant([BotReply(text="ok")])
    bot, session = make_bot()
    services = build_services(assistant, conversation_log, MemoryKeyValueStore(), platform_stub())
    codec = services.codec
    dispatcher = build_dispatcher(MemoryStorage(), services)
    user = buyer()
    menu = Message(message_id=5, date=datetime.now(UTC), chat=Chat(id=user.id, type="private"), text="menu")
    data = await codec.encode('/inform{"order_id":"KM20261127001"}')
    update = Update(
        update_id=9,
        callback_query=CallbackQuery(id="cb1", from_user=user, chat_instance="x", message=menu, data=data),
    )
    await dispatcher.feed_update(bot, update)
    kinds = [type(r) for r in session.requests]
    assert kinds[:2] == [AnswerCallbackQuery, EditMessageReplyMarkup]
    assert assistant.calls[0][1] == '/inform{"order_id":"KM20261127001"}'
    assert session.sent()[0].text == "ok"


async def test_expired_button_is_answered_without_calling_the_assistant(
    conversation_log: ConversationLog,
) -> None:
    assistant = FakeAssistant([BotReply(text="never")])
    bot, session = make_bot()
    services = build_services(assistant, conversation_log, MemoryKeyValueStore(), platform_stub())
    dispatcher = build_dispatcher(MemoryStorage(), services)
    user = buyer()
    menu = Message(message_id=5, date=datetime.now(UTC), chat=Chat(id=user.id, type="private"), text="menu")
    update = Update(
        update_id=10,
        callback_query=CallbackQuery(
            id="cb2", from_user=user, chat_instance="x", message=menu, data="h:00ff"
        ),
    )
    await dispatcher.feed_update(bot, update)
    [answer] = [r for r in session.requests if isinstance(r, AnswerCallbackQuery)]
    assert answer.text and "过期" in answer.text
    assert assistant.calls == []


async def test_sticker_gets_a_polite_hint(conversation_log: ConversationLog) -> None:
    user = buyer()
    update = Update(
        update_id=11,
        message=Message(
            message_id=11,
            date=datetime.now(UTC),
            chat=Chat(id=user.id, type="private"),
            from_user=user,
            sticker=Sticker(
                file_id="s",
                file_unique_id="s",
                type="regular",
                width=1,
                height=1,
                is_animated=False,
                is_video=False,
            ),
        ),
    )
    assistant = FakeAssistant([])
    session, *_ = await run_update(update, assistant, conversation_log)
    assert "文字" in session.sent()[0].text
    assert assistant.calls == []


async def test_commands_map_to_intents(conversation_log: ConversationLog) -> None:
    assistant = FakeAssistant([BotReply(text="hi")])
    await run_update(text_update("/start"), assistant, conversation_log)
    await run_update(text_update("/human"), assistant, conversation_log)
    await run_update(text_update("/orders"), assistant, conversation_log)
    assert [call[1] for call in assistant.calls] == ["/greet", "/human_handoff", "/order_status"]


async def test_start_with_a_token_links_the_buyer_then_greets(conversation_log: ConversationLog) -> None:
    redeemed: list[dict[str, object]] = []

    def platform(request: httpx.Request) -> httpx.Response:
        redeemed.append(json.loads(request.content))
        return httpx.Response(
            201,
            json={"buyer_id": "B1001", "telegram_user_id": 10001, "linked_at": "2026-11-27T12:00:00+00:00"},
        )

    assistant = FakeAssistant([BotReply(text="您好")])
    bot, session = make_bot()
    services = build_services(assistant, conversation_log, MemoryKeyValueStore(), platform_stub(platform))
    await build_dispatcher(MemoryStorage(), services).feed_update(bot, text_update("/start abcdEFGH1234"))
    assert redeemed == [{"token": "abcdEFGH1234", "telegram_user_id": 10001}]
    assert [m.text for m in session.sent()] == ["✅ 绑定成功！现在可以直接问我您的订单了。", "您好"]


@pytest.mark.parametrize(
    ("status", "code", "expected"), [(410, "token_expired", "过期"), (409, "token_used", "用过")]
)
async def test_start_with_a_bad_token_explains(
    conversation_log: ConversationLog, status: int, code: str, expected: str
) -> None:
    def platform(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": {"code": code, "message": code}})

    assistant = FakeAssistant([BotReply(text="never")])
    bot, session = make_bot()
    services = build_services(assistant, conversation_log, MemoryKeyValueStore(), platform_stub(platform))
    await build_dispatcher(MemoryStorage(), services).feed_update(bot, text_update("/start abcdEFGH1234"))
    [sent] = session.sent()
    assert expected in sent.text
    assert assistant.calls == []


async def test_lang_switch_overrides_telegram_language(conversation_log: ConversationLog) -> None:
    assistant = FakeAssistant([BotReply(text="ok")])
    bot, session = make_bot()
    services = build_services(assistant, conversation_log, MemoryKeyValueStore(), platform_stub())
    dispatcher = build_dispatcher(MemoryStorage(), services)
    await dispatcher.feed_update(bot, text_update("/lang en", update_id=1))
    await dispatcher.feed_update(bot, text_update("我的订单", update_id=2))
    assert "English" in session.sent()[0].text
    assert assistant.calls[0][2]["language"] == "en"


async def test_duplicate_update_is_processed_once(conversation_log: ConversationLog) -> None:
    assistant = FakeAssistant([BotReply(text="ok")])
    bot, session = make_bot()
    services = build_services(assistant, conversation_log, MemoryKeyValueStore(), platform_stub())
    dispatcher = build_dispatcher(MemoryStorage(), services)
    await dispatcher.feed_update(bot, text_update("在吗", update_id=77))
    await dispatcher.feed_update(bot, text_update("在吗", update_id=77))
    assert len(assistant.calls) == 1
    assert len(session.sent()) == 1
