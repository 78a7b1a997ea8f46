"""The terminal chat: a console stand-in for Telegram used by the demo when no bot token is set.

It is not a second code path: typed lines become real aiogram ``Update`` objects fed to the same
``Dispatcher``, and the bot's API calls go to :class:`TerminalSession`, an aiogram session that prints
what Telegram would show instead of calling HTTP. Type ``#N`` to press button N of the last keyboard.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import sys
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from typing import Any, TextIO, cast

from aiogram import Bot, Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    SendMessage,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import CallbackQuery, Chat, InlineKeyboardMarkup, Message, Update, User

TERMINAL_TOKEN = "1000000:terminal-demo"
DEMO_USER_ID = 10001
_BUTTON = re.compile(r"^#(\d+)$")
_TAGS = re.compile(r"</?(b|i|u|s|code|pre|a)(\s[^>]*)?>")


class TerminalSession(BaseSession):
    """Answers the Bot API methods the bot uses, printing messages and keyboards to a text stream."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        super().__init__()
        self._out = out
        self._message_ids = itertools.count(1)
        self.last_keyboard: InlineKeyboardMarkup | None = None
        self.last_message: Message | None = None

    async def close(self) -> None:
        return None

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        return cast(TelegramType, self._answer(method))

    def _answer(self, method: TelegramMethod[Any]) -> Any:
        if isinstance(method, GetMe):
            return User(
                id=int(TERMINAL_TOKEN.split(":")[0]), is_bot=True, first_name="卡盟客服", username="demo_bot"
            )
        if isinstance(method, SendMessage | EditMessageText):
            return self._show(method)
        if isinstance(method, EditMessageReplyMarkup):
            self.last_keyboard = None
            return True
        if isinstance(method, AnswerCallbackQuery):
            if method.text:
                self._print(f"  (提示 / notice) {method.text}")
            return True
        return True

    def _show(self, method: SendMessage | EditMessageText) -> Message:
        keyboard = method.reply_markup if isinstance(method.reply_markup, InlineKeyboardMarkup) else None
        self._print("🤖 " + _plain(method.text or "").replace("\n", "\n   "))
        self.last_keyboard = keyboard
        if keyboard is not None:
            buttons = [button.text for row in keyboard.inline_keyboard for button in row]
            self._print("   " + "  ".join(f"[#{i}] {title}" for i, title in enumerate(buttons, 1)))
        chat_id = int(method.chat_id) if method.chat_id is not None else DEMO_USER_ID
        message = Message(
            message_id=next(self._message_ids),
            date=datetime.now(UTC),
            chat=Chat(id=chat_id, type="private"),
            text=method.text,
            reply_markup=keyboard,
        )
        self.last_message = message
        return message

    def _print(self, line: str) -> None:
        self._out.write(line + "\n")
        self._out.flush()

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield b""


def _plain(html_text: str) -> str:
    return _TAGS.sub("", html_text).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


class TerminalChat:
    """Turns typed lines into Telegram updates for one demo buyer."""

    def __init__(self, dispatcher: Dispatcher, bot: Bot, session: TerminalSession, language: str) -> None:
        self._dispatcher = dispatcher
        self._bot = bot
        self._session = session
        self._updates = itertools.count(1)
        self._user = User(id=DEMO_USER_ID, is_bot=False, first_name="Demo", language_code=language)
        self._chat = Chat(id=DEMO_USER_ID, type="private")

    def update_for(self, line: str) -> Update | None:
        match = _BUTTON.match(line.strip())
        if match and self._session.last_keyboard is not None:
            buttons = [b for row in self._session.last_keyboard.inline_keyboard for b in row]
            index = int(match.group(1)) - 1
            if not 0 <= index < len(buttons):
                return None
            return Update(
                update_id=next(self._updates),
                callback_query=CallbackQuery(
                    id=str(next(self._updates)),
                    from_user=self._user,
                    chat_instance="terminal",
                    message=self._session.last_message,
                    data=buttons[index].callback_data,
                ),
            )
        return Update(
            update_id=next(self._updates),
            message=Message(
                message_id=10_000 + next(self._updates),
                date=datetime.now(UTC),
                chat=self._chat,
                from_user=self._user,
                text=line,
            ),
        )

    async def run(self, read_line: Callable[[str], str] = input) -> None:
        print(
            "卡盟客服 · terminal chat. Type a message (e.g. 我的订单 KM20261127001 到哪了?), #N presses a button,"
        )
        print("/lang en switches the Telegram language, Ctrl-D quits.")
        while True:
            try:
                line = await asyncio.to_thread(read_line, "你 / you > ")
            except EOFError:
                return
            line = line.strip()
            if not line:
                continue
            if line.startswith("/lang "):
                self._user = self._user.model_copy(update={"language_code": line.split()[1]})
                continue
            update = self.update_for(line)
            if update is None:
                print("   (no such button)")
                continue
            await self._dispatcher.feed_update(self._bot, update)
