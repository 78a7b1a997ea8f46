"""Middlewares: log every message the bot sends; one place where errors become a polite reply."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import EditMessageText, SendMessage
from aiogram.methods.base import Response, TelegramType
from aiogram.types import ErrorEvent, Message

from bot.i18n import language_from_telegram, text
from bot.outage import is_outage
from integrations.storage.repositories import ConversationLog, LoggedMessage

if TYPE_CHECKING:
    from aiogram.methods import TelegramMethod

log = logging.getLogger(__name__)


class OutgoingLogMiddleware(BaseRequestMiddleware):
    """Writes every text the bot sends or edits to the conversation log, after Telegram accepted it."""

    def __init__(self, conversation_log: ConversationLog) -> None:
        self._log = conversation_log

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        response = await make_request(bot, method)
        # aiogram types this as Response, but the session hands back the bare result.
        result: object = response.result if isinstance(response, Response) else response
        if isinstance(method, SendMessage | EditMessageText) and isinstance(result, Message):
            sent = result
            try:
                await self._log.append(
                    LoggedMessage(
                        chat_id=sent.chat.id,
                        direction="out",
                        kind="text" if isinstance(method, SendMessage) else "edit",
                        text=method.text or "",
                        telegram_message_id=sent.message_id,
                    )
                )
            except Exception:  # the message was delivered; a log failure must not resend it
                log.exception("could not log outgoing message to chat %s", sent.chat.id)
        return response


async def on_error(event: ErrorEvent, bot: Bot, **_: Any) -> bool:
    """Log with context and tell the buyer politely; never a stack trace in the chat.

    A store outage (Redis, the database, the outbox journal) is not handled here: it propagates, so the
    durable intake keeps the update and processes it again when the store is back, and the buyer is not
    told anything untrue ("saved") meanwhile.
    """
    if is_outage(event.exception):
        raise event.exception
    update = event.update
    log.error("error handling update %s", update.update_id, exc_info=event.exception)
    message = update.message or (update.callback_query.message if update.callback_query else None)
    user = update.message.from_user if update.message else None
    if update.callback_query:
        user = update.callback_query.from_user
        try:
            await update.callback_query.answer()
        except Exception:
            log.debug("callback %s could not be answered", update.callback_query.id)
    if message is None:
        return True
    language = language_from_telegram(user.language_code if user else None)
    try:
        await bot.send_message(message.chat.id, text("assistant_confused", language))
    except Exception:
        log.exception("could not tell chat %s about the error", message.chat.id)
    return True
