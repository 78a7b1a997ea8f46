"""The bot's side of the staff terminal (``bot.staff_console``, ``make demo-staff``).

The demo bot (terminal mode) serves three local endpoints on its HTTP port (loopback only):

- ``GET  /demo/staff/feed?after=N`` — what the bot did in staff chats after event N (long-polls ~20 s);
- ``POST /demo/staff/say``   ``{chat_id, thread_id, text}`` — a staff user's message in that chat;
- ``POST /demo/staff/press`` ``{chat_id, message_id, data}`` — a staff user pressing a button.

The staff user of a chat is the merchant's staff in a merchant chat and an agent in the agents' forum; the
handoff logic is the bot's own staff router, fed real aiogram updates.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.types import CallbackQuery, Message, Update, User
from aiohttp import web

from bot.terminal import TerminalSession

AGENT = User(id=30001, is_bot=False, first_name="客服小林", last_name="Agent Lin", language_code="zh")


def staff_user(session: TerminalSession, chat_id: int) -> User:
    """Who types in a staff chat: an agent in the agents' forum, the merchant's staff elsewhere."""
    if chat_id == session.agents_chat_id:
        return AGENT
    return User(id=20000 + abs(chat_id) % 10000, is_bot=False, first_name="商家客服", last_name="Merchant")


@dataclass
class StaffEndpoints:
    """The bot-side of the staff terminal: staff chats' feed out, staff users' updates in."""

    session: TerminalSession
    dispatcher: Dispatcher
    bot: Bot

    def __post_init__(self) -> None:
        self._ids = itertools.count(1_000_000)

    def register(self, app: web.Application) -> None:
        app.router.add_get("/demo/staff/feed", self.feed)
        app.router.add_post("/demo/staff/say", self.say)
        app.router.add_post("/demo/staff/press", self.press)

    async def feed(self, request: web.Request) -> web.Response:
        after = int(request.query.get("after", "0"))
        wait = min(float(request.query.get("wait", "20")), 25.0)
        events = await self.session.staff.after(after, wait)
        return web.json_response(
            {"agents_chat_id": self.session.agents_chat_id, "events": [e.as_json() for e in events]}
        )

    async def say(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        chat_id, text = int(body["chat_id"]), str(body["text"])
        thread_id = int(body["thread_id"]) if body.get("thread_id") else None
        message = Message(
            message_id=self.session.new_message_id(),
            date=datetime.now(UTC),
            chat=self.session.chat(chat_id),
            from_user=staff_user(self.session, chat_id),
            text=text,
            message_thread_id=thread_id,
            is_topic_message=True if thread_id else None,
        )
        self.session.remember(message)
        self.session.staff.add(
            "message",
            chat_id,
            message_id=message.message_id,
            thread_id=thread_id,
            text=text,
            sender=message.from_user.full_name if message.from_user else "staff",
        )
        await self.dispatcher.feed_update(self.bot, Update(update_id=next(self._ids), message=message))
        return web.json_response({"message_id": message.message_id})

    async def press(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        chat_id, message_id = int(body["chat_id"]), int(body["message_id"])
        message = self.session._messages.get((chat_id, message_id))
        if message is None:
            return web.json_response({"error": "no such message"}, status=404)
        query_id = str(next(self._ids))
        self.session.remember_callback(query_id, chat_id)
        query = CallbackQuery(
            id=query_id,
            from_user=staff_user(self.session, chat_id),
            chat_instance=f"staff{chat_id}",
            message=message,
            data=str(body["data"]),
        )
        await self.dispatcher.feed_update(self.bot, Update(update_id=next(self._ids), callback_query=query))
        return web.json_response({"ok": True})
