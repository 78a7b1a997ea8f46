"""The terminal chat: numbered buttons across messages, edits shown as edits, staff chats in the feed, and
typed lines fed to the real dispatcher (``/lang en`` answered by the bot, in English)."""

from __future__ import annotations

import io
from pathlib import Path

from aiogram import Bot
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.app import build_dispatcher, build_services
from bot.kv import MemoryKeyValueStore
from bot.staff_console import StaffTerminal
from bot.terminal import (
    DEMO_USER_ID,
    TERMINAL_TOKEN,
    ButtonBoard,
    Console,
    TerminalChat,
    TerminalSession,
)
from bot.terminal_staff import AGENT, StaffEndpoints
from integrations.storage.db import make_engine, make_sessionmaker, upgrade_to_head
from integrations.storage.repositories import ConversationLog
from tests.bot.test_dispatcher import FakeAssistant, platform_stub

MERCHANT_CHAT = -1002001
AGENTS_CHAT = -1009999000001


def keyboard(*titles: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=f"cb:{t}") for t in titles]]
    )


def terminal() -> tuple[Bot, TerminalSession, io.StringIO]:
    out = io.StringIO()
    session = TerminalSession(Console(out), agents_chat_id=AGENTS_CHAT)
    return Bot(TERMINAL_TOKEN, session=session), session, out


def test_button_numbers_run_across_messages_and_die_with_their_keyboard() -> None:
    board = ButtonBoard(keep=2)
    assert board.number(1, 10, [[("a", "A"), ("b", "B")]]) == "[#1] a  [#2] b"
    assert board.number(1, 11, [[("c", "C")], [("d", "D")]]) == "[#3] c  [#4] d"
    assert board.press(2) == (1, 10, "B")  # the first message's buttons still work after the second
    assert board.press(4) == (1, 11, "D")
    assert board.number(1, 10, [[("e", "E")]]) == "[#5] e"  # a changed keyboard gets new numbers
    assert board.press(1) is None and board.press(5) == (1, 10, "E")
    board.number(1, 12, [[("f", "F")]])  # only the last two keyboards stay pressable
    assert board.press(3) is None and board.press(6) == (1, 12, "F")


async def test_buyer_messages_print_with_numbers_and_edits_show_as_edits() -> None:
    bot, session, out = terminal()
    first = await bot.send_message(DEMO_USER_ID, "<b>订单</b> KM1", reply_markup=keyboard("多久", "退款"))
    await bot.send_message(DEMO_USER_ID, "second", reply_markup=keyboard("转人工"))
    await bot.edit_message_text("订单 KM1 已到账", chat_id=DEMO_USER_ID, message_id=first.message_id)
    await bot.edit_message_reply_markup(chat_id=DEMO_USER_ID, message_id=first.message_id, reply_markup=None)
    shown = out.getvalue()
    assert "🤖 订单 KM1\n   [#1] 多久  [#2] 退款" in shown
    assert "[#3] 转人工" in shown
    assert "✏️  (改为 edited) 订单 KM1 已到账" in shown
    assert "buttons removed" in shown
    assert session.board.press(1) is None and session.board.press(3) is not None
    assert session.staff.events == []


async def test_staff_chats_go_to_the_feed_and_copies_carry_the_text() -> None:
    bot, session, out = terminal()
    card = await bot.send_message(MERCHANT_CHAT, "工单 T1", reply_markup=keyboard("接单"))
    topic = await bot.create_forum_topic(AGENTS_CHAT, "T1 · KM1")
    buyer_says = await bot.send_message(DEMO_USER_ID, "hello")
    await bot.copy_message(MERCHANT_CHAT, DEMO_USER_ID, buyer_says.message_id)
    kinds = [(e.kind, e.chat_id, e.text) for e in session.staff.events]
    assert kinds == [
        ("message", MERCHANT_CHAT, "工单 T1"),
        ("topic", AGENTS_CHAT, "T1 · KM1"),
        ("message", MERCHANT_CHAT, "hello"),
    ]
    assert session.staff.events[0].buttons == [[("接单", "cb:接单")]]
    assert session.staff.events[1].thread_id == topic.message_thread_id
    assert card.chat.type == "group" and session.chat(AGENTS_CHAT).is_forum
    assert "make demo-staff" in out.getvalue()  # the buyer's terminal points at the second terminal once


async def services_and_dispatcher(tmp_path: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await upgrade_to_head(url)
    log = ConversationLog(make_sessionmaker(make_engine(url)))
    services = build_services(FakeAssistant([]), log, MemoryKeyValueStore(), platform_stub())
    return services, build_dispatcher(MemoryStorage(), services)


async def test_typed_lines_reach_the_bot_and_lang_is_answered_in_the_new_language(tmp_path: Path) -> None:
    bot, session, out = terminal()
    _, dispatcher = await services_and_dispatcher(tmp_path)
    lines = iter(["/lang en", "#9", "/help"])

    def read_line(prompt: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    chat = TerminalChat(dispatcher, bot, session, "zh")
    await chat.run(read_line)
    shown = out.getvalue()
    assert chat.language_code == "en"  # like a Telegram app switched to English
    assert "English" in shown.split("/lang en")[-1]  # the bot's own confirmation, in English
    assert "no such button" in shown
    assert "Commands: /orders" in shown  # /help answered in English afterwards


async def test_staff_endpoints_feed_updates_as_the_chats_staff_user(tmp_path: Path) -> None:
    bot, session, _ = terminal()
    _, dispatcher = await services_and_dispatcher(tmp_path)
    seen: list[tuple[int, int, str]] = []

    async def pressed(query: CallbackQuery) -> None:
        assert query.message is not None
        seen.append((query.from_user.id, query.message.chat.id, query.data or ""))
        await query.answer("收到")

    dispatcher.callback_query.register(pressed)
    app = web.Application()
    StaffEndpoints(session, dispatcher, bot).register(app)
    card = await bot.send_message(AGENTS_CHAT, "工单", message_thread_id=101, reply_markup=keyboard("接手"))
    async with TestClient(TestServer(app)) as client:
        feed = await (await client.get("/demo/staff/feed", params={"after": 0, "wait": 0})).json()
        assert feed["agents_chat_id"] == AGENTS_CHAT
        assert feed["events"][0]["text"] == "工单" and feed["events"][0]["thread_id"] == 101
        body = {"chat_id": AGENTS_CHAT, "message_id": card.message_id, "data": "cb:接手"}
        assert (await client.post("/demo/staff/press", json=body)).status == 200
        said = await client.post(
            "/demo/staff/say", json={"chat_id": AGENTS_CHAT, "thread_id": 101, "text": "hi"}
        )
        assert said.status == 200
        feed = await (await client.get("/demo/staff/feed", params={"after": 1, "wait": 0})).json()
    assert seen == [(AGENT.id, AGENTS_CHAT, "cb:接手")]
    kinds = [(e["kind"], e["text"]) for e in feed["events"]]
    assert ("notice", "收到") in kinds and ("message", "hi") in kinds


def test_staff_terminal_renders_numbered_buttons_and_follows_the_latest_chat() -> None:
    out = io.StringIO()
    staff = StaffTerminal("http://127.0.0.1:1", out)
    staff._render(
        {
            "seq": 1,
            "kind": "message",
            "chat_id": MERCHANT_CHAT,
            "message_id": 5,
            "thread_id": None,
            "text": "工单 T1\n订单 KM1",
            "buttons": [[["接单", "ho:acc:T1"], ["关闭", "ho:close:T1"]]],
            "sender": "bot",
        }
    )
    assert "[#1] 接单  [#2] 关闭" in out.getvalue()
    assert staff.prompt == f"[商家 merchant {MERCHANT_CHAT}] > "
    assert staff._board.press(2) == (MERCHANT_CHAT, 5, "ho:close:T1")
