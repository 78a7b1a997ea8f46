"""The terminal chat: a console stand-in for Telegram used by the demo when no bot token is set.

It is not a second code path: typed lines become real aiogram ``Update`` objects fed to the same
``Dispatcher``, and the bot's API calls go to :class:`TerminalSession`, an aiogram session that plays
Telegram's part instead of calling HTTP. What the bot sends to the demo buyer is printed here; what it sends to
the merchants' and agents' chats goes to a :class:`StaffFeed` that ``make demo-staff`` (``bot.staff_console``)
shows in a second terminal.

Buttons get numbers that stay unique across the recent messages (``#N`` presses button N), edits are shown as
edits, and every command is answered by the bot itself (``/lang en`` confirms in English).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import sys
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO, cast

from aiogram import Bot, Dispatcher
from aiogram.client.session.base import BaseSession
from aiogram.methods import (
    AnswerCallbackQuery,
    CopyMessage,
    CreateForumTopic,
    DeleteMessage,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    SendDocument,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import (
    CallbackQuery,
    Chat,
    ForumTopic,
    InlineKeyboardMarkup,
    Message,
    MessageId,
    Update,
    User,
)

from bot.terminal_board import ButtonBoard, Buttons

__all__ = ["ButtonBoard", "Buttons", "Console", "StaffFeed", "TerminalChat", "TerminalSession", "plain"]

TERMINAL_TOKEN = "1000000:terminal-demo"
DEMO_USER_ID = 10001
BOT_USER = User(id=int(TERMINAL_TOKEN.split(":")[0]), is_bot=True, first_name="卡盟客服", username="demo_bot")
_BUTTON = re.compile(r"^#(\d+)$")
_TAGS = re.compile(r"</?(b|i|u|s|code|pre|a|blockquote|tg-spoiler)(\s[^>]*)?>")


def plain(html_text: str) -> str:
    """Telegram HTML as the plain text a console can show."""
    return (
        _TAGS.sub("", html_text)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
    )


def buttons_of(markup: Any) -> Buttons | None:
    if not isinstance(markup, InlineKeyboardMarkup):
        return None
    rows = [[(b.text, b.callback_data or "") for b in row] for row in markup.inline_keyboard]
    return rows or None


@dataclass
class StaffEvent:
    """Something the bot did in a staff (merchant or agents') chat, as the staff terminal shows it."""

    seq: int
    kind: str  # message | edit | buttons | topic | notice | deleted
    chat_id: int
    message_id: int = 0
    thread_id: int | None = None
    text: str = ""
    buttons: Buttons | None = None
    sender: str = "bot"

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "kind": self.kind,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "thread_id": self.thread_id,
            "text": self.text,
            "buttons": self.buttons,
            "sender": self.sender,
        }


@dataclass
class StaffFeed:
    """Everything that happened in staff chats, in order; readers long-poll for what is new."""

    events: list[StaffEvent] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, kind: str, chat_id: int, **fields: Any) -> None:
        self.events.append(StaffEvent(len(self.events) + 1, kind, chat_id, **fields))
        self._changed.set()

    async def after(self, seq: int, wait: float) -> list[StaffEvent]:
        if len(self.events) <= seq and wait > 0:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)
        return self.events[seq:]


class Console:
    """The buyer's screen: bot messages may arrive while the prompt waits, so they are printed above it."""

    PROMPT = "你 / you > "

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self._out = out
        self.waiting = False

    def show(self, text: str) -> None:
        if self.waiting:
            self._out.write("\r\x1b[K" if self._out.isatty() else "\n")
        self._out.write(text + "\n")
        if self.waiting:
            self._out.write(self.PROMPT)
        self._out.flush()


class TerminalSession(BaseSession):
    """Answers the Bot API methods the bot uses: the buyer's chat is printed, staff chats go to the feed."""

    def __init__(
        self,
        console: Console | None = None,
        *,
        buyer_chat_id: int = DEMO_USER_ID,
        agents_chat_id: int | None = None,
    ) -> None:
        super().__init__()
        self.console = console or Console()
        self.buyer_chat_id = buyer_chat_id
        self.agents_chat_id = agents_chat_id
        self.board = ButtonBoard()
        self.staff = StaffFeed()
        self._message_ids = itertools.count(1)
        self._topic_ids = itertools.count(101)
        self._messages: dict[tuple[int, int], Message] = {}
        self._callback_chats: dict[str, int] = {}
        self._staff_hint_shown = False

    # ---------------------------------------------------------------- what the chats look like

    def chat(self, chat_id: int) -> Chat:
        if chat_id > 0:
            return Chat(id=chat_id, type="private")
        if chat_id == self.agents_chat_id:
            return Chat(id=chat_id, type="supergroup", title="平台客服 agents", is_forum=True)
        return Chat(id=chat_id, type="group", title=f"商家 merchant {chat_id}")

    def new_message_id(self) -> int:
        return next(self._message_ids)

    def remember(self, message: Message) -> None:
        """Keep a message (the bot's or a user's) so it can be copied, edited or pressed later."""
        self._messages[(message.chat.id, message.message_id)] = message

    def remember_callback(self, query_id: str, chat_id: int) -> None:
        self._callback_chats[query_id] = chat_id

    # ---------------------------------------------------------------- aiogram session

    async def close(self) -> None:
        return None

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        return cast(TelegramType, self._answer(method))

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        yield b""

    def _answer(self, method: TelegramMethod[Any]) -> Any:
        if isinstance(method, GetMe):
            return BOT_USER
        if isinstance(method, SendMessage):
            return self._send(int(method.chat_id), method.text, method.reply_markup, method.message_thread_id)
        if isinstance(method, SendPhoto | SendDocument):
            label = "[图片 photo]" if isinstance(method, SendPhoto) else "[文件 document]"
            caption = f"{label} {method.caption or ''}".strip()
            return self._send(int(method.chat_id), caption, method.reply_markup, method.message_thread_id)
        if isinstance(method, CopyMessage):
            original = self._messages.get((int(method.from_chat_id), method.message_id))
            content = "" if original is None else (original.text or original.caption or "[附件 attachment]")
            copied = self._send(
                int(method.chat_id), content, method.reply_markup, method.message_thread_id, raw=True
            )
            return MessageId(message_id=copied.message_id)
        if isinstance(method, EditMessageText):
            return self._edit_text(method)
        if isinstance(method, EditMessageReplyMarkup):
            return self._edit_buttons(method)
        if isinstance(method, AnswerCallbackQuery):
            if method.text:
                chat_id = self._callback_chats.get(method.callback_query_id, self.buyer_chat_id)
                self._notice(chat_id, method.text)
            return True
        if isinstance(method, CreateForumTopic):
            thread_id = next(self._topic_ids)
            self.staff.add("topic", int(method.chat_id), thread_id=thread_id, text=method.name)
            return ForumTopic(message_thread_id=thread_id, name=method.name, icon_color=0x6FB9F0)
        if isinstance(method, DeleteMessage):
            self._messages.pop((int(method.chat_id), method.message_id), None)
            self.board.clear(int(method.chat_id), method.message_id)
            return True
        return True  # setMyCommands, sendChatAction, deleteWebhook...: nothing to show

    def _send(
        self,
        chat_id: int,
        text: str,
        markup: Any,
        thread_id: int | None,
        *,
        raw: bool = False,
    ) -> Message:
        shown = text if raw else plain(text)
        message = Message(
            message_id=self.new_message_id(),
            date=datetime.now(UTC),
            chat=self.chat(chat_id),
            from_user=BOT_USER,
            text=shown,
            reply_markup=markup if isinstance(markup, InlineKeyboardMarkup) else None,
            message_thread_id=thread_id,
            is_topic_message=True if thread_id else None,
        )
        self.remember(message)
        rows = buttons_of(markup)
        if chat_id == self.buyer_chat_id:
            prefix = "🤖 ↪️ " if raw else "🤖 "  # a copy: what a merchant or agent wrote, relayed by the bot
            self._print_buyer(prefix, shown, self.board.number(chat_id, message.message_id, rows))
        elif chat_id < 0:  # groups: the merchants' chats and the agents' forum
            self.staff.add(
                "message",
                chat_id,
                message_id=message.message_id,
                thread_id=thread_id,
                text=shown,
                buttons=rows,
                sender="bot (copy)" if raw else "bot",
            )
            self._hint_staff()
        # other buyers' private chats (the seeded second buyer gets event notices too) are not shown
        return message

    def _edit_text(self, method: EditMessageText) -> Message | bool:
        if method.chat_id is None or method.message_id is None:
            return True
        chat_id, message_id = int(method.chat_id), method.message_id
        old = self._messages.get((chat_id, message_id))
        shown = plain(method.text or "")
        markup = method.reply_markup if isinstance(method.reply_markup, InlineKeyboardMarkup) else None
        message = Message(
            message_id=message_id,
            date=datetime.now(UTC),
            edit_date=int(datetime.now(UTC).timestamp()),
            chat=self.chat(chat_id),
            from_user=BOT_USER,
            text=shown,
            reply_markup=markup,
            message_thread_id=old.message_thread_id if old else None,
        )
        self.remember(message)
        rows = buttons_of(markup)
        if chat_id == self.buyer_chat_id:
            self._print_buyer("✏️  (改为 edited) ", shown, self.board.number(chat_id, message_id, rows))
        elif chat_id < 0:
            thread_id = old.message_thread_id if old else None
            self.staff.add(
                "edit", chat_id, message_id=message_id, thread_id=thread_id, text=shown, buttons=rows
            )
        return message

    def _edit_buttons(self, method: EditMessageReplyMarkup) -> bool:
        if method.chat_id is None or method.message_id is None:
            return True
        chat_id, message_id = int(method.chat_id), method.message_id
        rows = buttons_of(method.reply_markup)
        old = self._messages.get((chat_id, message_id))
        if old is not None:
            self.remember(old.model_copy(update={"reply_markup": method.reply_markup}))
        if chat_id == self.buyer_chat_id:
            line = self.board.number(chat_id, message_id, rows)
            about = _snippet(old.text if old else "")
            if line is None:
                self.console.show(f"   ✏️  (按钮已收起 buttons removed: “{about}”)")
            else:
                self.console.show(f"   ✏️  (按钮已更新 buttons changed: “{about}”)\n   {line}")
        elif chat_id < 0:
            thread_id = old.message_thread_id if old else None
            self.staff.add("buttons", chat_id, message_id=message_id, thread_id=thread_id, buttons=rows)
        return True

    def _notice(self, chat_id: int, text: str) -> None:
        if chat_id == self.buyer_chat_id:
            self.console.show(f"   (提示 notice) {plain(text)}")
        elif chat_id < 0:
            self.staff.add("notice", chat_id, text=plain(text))

    def _print_buyer(self, prefix: str, text: str, buttons: str | None) -> None:
        lines = prefix + text.replace("\n", "\n   ")
        if buttons:
            lines += "\n   " + buttons
        self.console.show(lines)

    def _hint_staff(self) -> None:
        if not self._staff_hint_shown:
            self._staff_hint_shown = True
            self.console.show(
                "   · 机器人给商家/客服发了消息：在另一个终端运行 make demo-staff 查看并接手。\n"
                "   · The bot wrote to the merchant/agents: run `make demo-staff` in a second terminal to "
                "see it and take over."
            )


def _snippet(text: str | None, size: int = 24) -> str:
    first = (text or "").split("\n", 1)[0]
    return first if len(first) <= size else first[:size] + "…"


async def open_when_ready(ready: Callable[[], Awaitable[bool]], open_by: float | None) -> None:
    """Hold the chat back until Rasa answers or the wall clock passes ``open_by`` (the stack's promise of a
    prompt within a minute); without ``open_by`` open at once."""
    while open_by is not None and time.time() < open_by and not await ready():  # noqa: ASYNC110 - polls a remote server
        await asyncio.sleep(0.5)


class TerminalChat:
    """Turns typed lines into Telegram updates for one demo buyer."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        bot: Bot,
        session: TerminalSession,
        language: str,
        *,
        ready: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self._bot = bot
        self._session = session
        self._updates = itertools.count(1)
        self._user = User(id=session.buyer_chat_id, is_bot=False, first_name="Demo", language_code=language)
        self._chat = Chat(id=session.buyer_chat_id, type="private")
        self._ready = ready

    @property
    def language_code(self) -> str | None:
        return self._user.language_code

    def update_for(self, line: str) -> Update | str:
        """The update a typed line stands for, or why there is none."""
        match = _BUTTON.match(line.strip())
        if match:
            pressed = self._session.board.press(int(match.group(1)))
            if pressed is None:
                return (
                    "   (没有这个按钮 no such button — 按钮编号见消息下方 the numbers are under the messages)"
                )
            chat_id, message_id, data = pressed
            message = self._session._messages.get((chat_id, message_id))
            query_id = str(next(self._updates))
            self._session.remember_callback(query_id, chat_id)
            return Update(
                update_id=next(self._updates),
                callback_query=CallbackQuery(
                    id=query_id,
                    from_user=self._user,
                    chat_instance="terminal",
                    message=message,
                    data=data,
                ),
            )
        if line.startswith("/lang"):
            wanted = line.split()[1:2]
            if wanted and wanted[0] in ("en", "zh"):  # the Telegram app's language follows, like a real user
                self._user = self._user.model_copy(update={"language_code": wanted[0]})
        message = Message(
            message_id=self._session.new_message_id(),
            date=datetime.now(UTC),
            chat=self._chat,
            from_user=self._user,
            text=line,
        )
        self._session.remember(message)
        return Update(update_id=next(self._updates), message=message)

    async def _announce_ready(self) -> None:
        """While Rasa still loads, typed messages are kept; say once when answers flow."""
        if self._ready is None or await self._ready():
            return
        self._session.console.show(
            "   ⏳ Rasa 仍在加载模型，现在输入的消息会在它就绪后回答。"
            "Rasa is still loading its model; what you type now is answered when it is ready."
        )
        while not await self._ready():  # noqa: ASYNC110 - polling a remote server, no local event to wait on
            await asyncio.sleep(1.0)
        self._session.console.show("   ✅ Rasa 已就绪 ready — 机器人开始回答 the bot answers now.")

    async def run(self, read_line: Callable[[str], str] = input, intro: Sequence[str] = ()) -> None:
        console = self._session.console
        console.show(
            "卡盟客服 · terminal chat. Type a message (e.g. 我的订单 KM20261127001 到哪了?), #N presses "
            "button N,\n/demo shows the demo's orders and clock, /lang en switches to English, Ctrl-D quits."
        )
        for line in intro:
            console.show(line)
        announcer = asyncio.create_task(self._announce_ready())
        try:
            while True:
                console.waiting = True
                try:
                    line = await asyncio.to_thread(read_line, console.PROMPT)
                except EOFError:
                    return
                finally:
                    console.waiting = False
                line = line.strip()
                if not line:
                    continue
                update = self.update_for(line)
                if isinstance(update, str):
                    console.show(update)
                    continue
                await self._dispatcher.feed_update(self._bot, update)
        finally:
            announcer.cancel()
