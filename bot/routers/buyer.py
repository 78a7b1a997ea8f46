"""Buyer-facing handlers: parse the update, call the conversation service, render."""

from __future__ import annotations

import contextlib
import html

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, InaccessibleMessage, Message

from bot.i18n import Language, language_from_telegram, text
from bot.payloads import PayloadCodec
from bot.sending import send_replies
from bot.services.conversation import BuyerMessage, ConversationService

HELP = {
    "zh": "我是订单客服助手，可以帮您：\n• 查询订单状态和到账时间\n• 说明超时全额退款保障\n• 修改充值账号或区服\n"
    "• 恢复误取消的订单\n• 转人工客服\n\n直接发送您的问题或订单号即可，例如：<code>我的订单 KM20261127001 到哪了?</code>",
    "en": "I am the order assistant. I can:\n• check an order's status and arrival time\n• explain the full-refund "
    "guarantee\n• fix a wrong recharge account or region\n• restore an order cancelled by mistake\n"
    "• hand you to a person\n\nJust type your question or order number, e.g. "
    "<code>where is my order KM20261127001?</code>",
}

# Commands that are buyer intents: sent to Rasa as the intent itself, so the dialogue stays in one place.
COMMAND_INTENTS = {"orders": "/order_status", "human": "/human_handoff"}


def _language(message_or_query: Message | CallbackQuery) -> Language:
    user = message_or_query.from_user
    return language_from_telegram(user.language_code if user else None)


async def _relay(
    bot: Bot, conversation: ConversationService, codec: PayloadCodec, buyer_message: BuyerMessage
) -> None:
    replies = await conversation.handle(buyer_message)
    await send_replies(bot, buyer_message.chat_id, replies, codec)


async def on_start(
    message: Message, command: CommandObject, bot: Bot, conversation: ConversationService, codec: PayloadCodec
) -> None:
    assert message.from_user is not None
    await _relay(
        bot,
        conversation,
        codec,
        BuyerMessage(
            chat_id=message.chat.id,
            user_id=message.from_user.id,
            text="/greet",
            language=_language(message),
            kind="command",
            message_id=message.message_id,
        ),
    )


async def on_help(message: Message) -> None:
    await message.answer(HELP[_language(message)])


async def on_intent_command(
    message: Message, command: CommandObject, bot: Bot, conversation: ConversationService, codec: PayloadCodec
) -> None:
    assert message.from_user is not None
    await _relay(
        bot,
        conversation,
        codec,
        BuyerMessage(
            chat_id=message.chat.id,
            user_id=message.from_user.id,
            text=COMMAND_INTENTS[command.command],
            language=_language(message),
            kind="command",
            message_id=message.message_id,
        ),
    )


async def on_text(message: Message, bot: Bot, conversation: ConversationService, codec: PayloadCodec) -> None:
    assert message.from_user is not None and message.text is not None
    await _relay(
        bot,
        conversation,
        codec,
        BuyerMessage(
            chat_id=message.chat.id,
            user_id=message.from_user.id,
            text=message.text,
            language=_language(message),
            message_id=message.message_id,
        ),
    )


async def on_button(
    query: CallbackQuery, bot: Bot, conversation: ConversationService, codec: PayloadCodec
) -> None:
    """Every callback query is answered; the pressed menu loses its keyboard so it cannot fire twice."""
    language = _language(query)
    payload = await codec.decode(query.data or "")
    if payload is None or query.message is None or isinstance(query.message, InaccessibleMessage):
        await query.answer(text("button_expired", language), show_alert=False)
        return
    await query.answer()
    with contextlib.suppress(TelegramBadRequest):  # already edited, too old, or deleted: harmless
        await query.message.edit_reply_markup(reply_markup=None)
    await _relay(
        bot,
        conversation,
        codec,
        BuyerMessage(
            chat_id=query.message.chat.id,
            user_id=query.from_user.id,
            text=payload,
            language=language,
            kind="callback",
        ),
    )


async def on_other_content(message: Message) -> None:
    await message.answer(html.escape(text("unsupported_content", _language(message))))


def buyer_router() -> Router:
    """A fresh router per dispatcher (no module-level state)."""
    router = Router(name="buyer")
    router.message.filter(F.chat.type == ChatType.PRIVATE)
    router.message.register(on_start, CommandStart())
    router.message.register(on_help, Command("help"))
    router.message.register(on_intent_command, Command(*COMMAND_INTENTS))
    router.message.register(on_text, F.text)
    router.callback_query.register(on_button, F.data)
    router.message.register(on_other_content)
    return router
