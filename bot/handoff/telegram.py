"""The Telegram side of the handoff ports: sends through the bot (so the outbox paces them), Telegram
errors mapped onto ``TopicGone`` / ``ChatUnreachable``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable

from aiogram import Bot
from aiogram.exceptions import (
    AiogramError,
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNotFound,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters

from bot.handoff.ports import ChatUnreachable, CopyUnavailable, Keyboard, TopicGone, TopicsUnavailable

log = logging.getLogger(__name__)

_TOPIC_GONE = ("thread not found", "topic_id_invalid", "topic_deleted", "topic was deleted")
_NOT_COPYABLE = ("can't be copied", "message can't be copied", "method not found", "not implemented")
_CHAT_GONE = ("chat not found", "bot was kicked", "not a member", "chat_write_forbidden", "have no rights")


def keyboard(buttons: Keyboard | None) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=title, callback_data=data) for title, data in row] for row in buttons
        ]
    )


def _reply(reply_to: int | None) -> ReplyParameters | None:
    return ReplyParameters(message_id=reply_to, allow_sending_without_reply=True) if reply_to else None


class TelegramMessenger:
    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def send_text(
        self,
        chat_id: int,
        text: str,
        *,
        thread_id: int | None = None,
        reply_to: int | None = None,
        buttons: Keyboard | None = None,
    ) -> int:
        try:
            message = await self._bot.send_message(
                chat_id,
                text,
                message_thread_id=thread_id,
                reply_parameters=_reply(reply_to),
                reply_markup=keyboard(buttons),
            )
        except (TelegramBadRequest, TelegramForbiddenError, TelegramNotFound) as exc:
            raise _mapped(exc, thread_id) from exc
        return message.message_id

    async def copy(
        self,
        to_chat: int,
        from_chat: int,
        message_id: int,
        *,
        thread_id: int | None = None,
        reply_to: int | None = None,
    ) -> int:
        try:
            copied = await self._bot.copy_message(
                to_chat, from_chat, message_id, message_thread_id=thread_id, reply_parameters=_reply(reply_to)
            )
        except TelegramNotFound as exc:  # 404: a Bot API without copyMessage (a missing chat is a 400)
            raise CopyUnavailable(str(exc)) from exc
        except (TelegramBadRequest, TelegramForbiddenError) as exc:
            mapped = _mapped(exc, thread_id)
            if mapped is exc and any(mark in str(exc).lower() for mark in _NOT_COPYABLE):
                raise CopyUnavailable(str(exc)) from exc
            raise mapped from exc
        except ClientDecodeError as exc:  # sent, but the answer is not a MessageId
            log.warning("copyMessage answered oddly (%s); the copy's id is unknown", exc)
            return 0
        message_id_out = getattr(copied, "message_id", 0)
        return message_id_out if isinstance(message_id_out, int) else 0

    async def create_topic(self, chat_id: int, name: str) -> int:
        try:
            topic = await self._bot.create_forum_topic(chat_id, name)
        except TelegramForbiddenError as exc:
            raise ChatUnreachable(str(exc)) from exc
        except (TelegramAPIError, AiogramError, ValueError) as exc:
            # not a forum, topics off in a private chat, an unknown method or an odd answer: no topics here
            raise TopicsUnavailable(f"{type(exc).__name__}: {exc}") from exc
        thread = getattr(topic, "message_thread_id", None)
        if not isinstance(thread, int) or thread <= 0:
            raise TopicsUnavailable(f"createForumTopic answered without a topic: {topic!r}"[:300])
        return thread

    async def edit_topic(self, chat_id: int, thread_id: int, name: str) -> bool:
        return await self._optional(
            "editForumTopic", self._bot.edit_forum_topic(chat_id, thread_id, name=name)
        )

    async def close_topic(self, chat_id: int, thread_id: int) -> bool:
        return await self._optional("closeForumTopic", self._bot.close_forum_topic(chat_id, thread_id))

    async def reopen_topic(self, chat_id: int, thread_id: int) -> bool:
        return await self._optional("reopenForumTopic", self._bot.reopen_forum_topic(chat_id, thread_id))

    @staticmethod
    async def _optional(method: str, call: Awaitable[object]) -> bool:
        """A nice-to-have call: whatever the Bot API answers (an error, an unknown method, an odd result),
        the handoff goes on; True only for a plain success."""
        try:
            result = await call
        except (TelegramAPIError, AiogramError, ValueError) as exc:
            log.info("%s not done: %s: %s", method, type(exc).__name__, exc)
            return False
        return result is True

    async def set_buttons(self, chat_id: int, message_id: int, buttons: Keyboard | None) -> None:
        with contextlib.suppress(TelegramBadRequest, TelegramForbiddenError, TelegramNotFound):
            await self._bot.edit_message_reply_markup(
                chat_id=chat_id, message_id=message_id, reply_markup=keyboard(buttons)
            )


def _mapped(exc: Exception, thread_id: int | None) -> Exception:
    """A send error as TopicGone (deleted topic), ChatUnreachable, or unchanged (our own mistake)."""
    text = str(exc).lower()
    if thread_id is not None and any(mark in text for mark in _TOPIC_GONE):
        return TopicGone(str(exc))
    if isinstance(exc, TelegramForbiddenError | TelegramNotFound) or any(mark in text for mark in _CHAT_GONE):
        return ChatUnreachable(str(exc))
    return exc
