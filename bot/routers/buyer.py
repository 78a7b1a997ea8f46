"""Buyer-facing handlers: parse the update, call a service, render. Private chats only."""

from __future__ import annotations

import contextlib

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import (
    CallbackQuery,
    InaccessibleMessage,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    User,
)

from bot.i18n import LANGUAGES, Language, text
from bot.payloads import PayloadCodec
from bot.sending import send_replies
from bot.services.attachments import AttachmentService
from bot.services.binding import BindingService
from bot.services.conversation import BuyerMessage, ConversationService
from bot.services.preferences import LanguagePreferences
from integrations.hygiene import clean_text

HELP = {
    "zh": "我是订单客服助手，可以帮您：\n• 查询订单状态和到账时间\n• 说明超时全额退款保障\n• 修改充值账号或区服\n"
    "• 恢复误取消的订单\n• 转人工客服\n\n直接发送您的问题或订单号即可，例如：<code>我的订单 KM20261127001 到哪了?</code>\n"
    "命令：/orders 我的订单 · /lang 切换语言 · /human 转人工",
    "en": "I am the order assistant. I can:\n• check an order's status and arrival time\n• explain the full-refund "
    "guarantee\n• fix a wrong recharge account or region\n• restore an order cancelled by mistake\n"
    "• hand you to a person\n\nJust type your question or order number, e.g. "
    "<code>where is my order KM20261127001?</code>\nCommands: /orders · /lang · /human",
}

# Commands that are buyer intents: sent to Rasa as the intent itself, so the dialogue stays in one place.
COMMAND_INTENTS = {"orders": "/order_status", "human": "/human_handoff"}
LANGUAGE_NAMES = {"zh": "中文", "en": "English"}


async def language_of(user: User | None, preferences: LanguagePreferences) -> Language:
    if user is None:
        return "zh"
    return await preferences.language_for(user.id, user.language_code)


async def relay(
    bot: Bot, conversation: ConversationService, codec: PayloadCodec, message: BuyerMessage
) -> None:
    replies = await conversation.handle(message)
    await send_replies(bot, message.chat_id, replies, codec)


def buyer_message(message: Message, text_: str, language: Language, kind: str = "text") -> BuyerMessage:
    """The edge: what the buyer wrote, cleaned (no NUL, no lone surrogates, length capped) before it is
    stored or sent anywhere."""
    assert message.from_user is not None
    return BuyerMessage(
        chat_id=message.chat.id,
        user_id=message.from_user.id,
        text=clean_text(text_),
        language=language,
        kind=kind,
        message_id=message.message_id,
    )


async def on_start(
    message: Message,
    command: CommandObject,
    bot: Bot,
    conversation: ConversationService,
    codec: PayloadCodec,
    preferences: LanguagePreferences,
    binding: BindingService,
) -> None:
    """``/start`` greets; ``/start <token>`` (the platform's deep link) first links the buyer."""
    assert message.from_user is not None
    language = await language_of(message.from_user, preferences)
    if command.args:
        result = await binding.redeem(command.args.strip(), message.from_user.id)
        await message.answer(text(result.code, language))
        if not result.ok:
            return
    await relay(bot, conversation, codec, buyer_message(message, "/greet", language, "command"))


async def on_help(message: Message, preferences: LanguagePreferences) -> None:
    await message.answer(HELP[await language_of(message.from_user, preferences)])


async def on_lang(message: Message, command: CommandObject, preferences: LanguagePreferences) -> None:
    """``/lang en`` switches at once; ``/lang`` alone shows a menu."""
    assert message.from_user is not None
    wanted = (command.args or "").strip().lower()[:2]
    if wanted in LANGUAGES:
        language: Language = "zh" if wanted == "zh" else "en"
        await preferences.choose(message.from_user.id, language)
        await message.answer(text("lang_set", language))
        return
    current = await language_of(message.from_user, preferences)
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=name, callback_data=f"lang:{code}")
                for code, name in LANGUAGE_NAMES.items()
            ]
        ]
    )
    await message.answer(text("lang_menu", current), reply_markup=keyboard)


async def on_lang_button(query: CallbackQuery, preferences: LanguagePreferences) -> None:
    language: Language = "en" if (query.data or "").endswith("en") else "zh"
    await preferences.choose(query.from_user.id, language)
    await query.answer()
    if query.message is not None and not isinstance(query.message, InaccessibleMessage):
        with contextlib.suppress(TelegramBadRequest):
            await query.message.edit_text(text("lang_set", language))


async def on_intent_command(
    message: Message,
    command: CommandObject,
    bot: Bot,
    conversation: ConversationService,
    codec: PayloadCodec,
    preferences: LanguagePreferences,
) -> None:
    language = await language_of(message.from_user, preferences)
    intent = COMMAND_INTENTS[command.command]
    await relay(bot, conversation, codec, buyer_message(message, intent, language, "command"))


async def on_text(
    message: Message,
    bot: Bot,
    conversation: ConversationService,
    codec: PayloadCodec,
    preferences: LanguagePreferences,
) -> None:
    assert message.text is not None
    language = await language_of(message.from_user, preferences)
    await relay(bot, conversation, codec, buyer_message(message, message.text, language))


async def on_edited_text(
    edited_message: Message,
    bot: Bot,
    conversation: ConversationService,
    codec: PayloadCodec,
    preferences: LanguagePreferences,
) -> None:
    """An edit is read as the buyer's corrected message, once (duplicates are filtered upstream)."""
    assert edited_message.text is not None
    language = await language_of(edited_message.from_user, preferences)
    await relay(
        bot, conversation, codec, buyer_message(edited_message, edited_message.text, language, "edit")
    )


async def on_attachment(
    message: Message,
    bot: Bot,
    conversation: ConversationService,
    codec: PayloadCodec,
    preferences: LanguagePreferences,
    attachments: AttachmentService,
) -> None:
    """Photos and documents (payment screenshots) are kept with the conversation; a caption is read too."""
    assert message.from_user is not None
    language = await language_of(message.from_user, preferences)
    await attachments.keep(message.chat.id, message.from_user.id, message.message_id, _file_of(message))
    if message.caption:
        await relay(bot, conversation, codec, buyer_message(message, message.caption, language))
    else:
        await message.answer(text("attachment_kept", language))


def _file_of(message: Message) -> tuple[str, str, str]:
    """(kind, file_id, name) of the photo or document."""
    if message.photo:
        return "photo", message.photo[-1].file_id, "photo.jpg"
    assert message.document is not None
    return "document", message.document.file_id, message.document.file_name or "document"


async def on_button(
    query: CallbackQuery,
    bot: Bot,
    conversation: ConversationService,
    codec: PayloadCodec,
    preferences: LanguagePreferences,
) -> None:
    """Every callback query is answered; the pressed menu loses its keyboard so it cannot fire twice."""
    language = await language_of(query.from_user, preferences)
    payload = await codec.decode(query.data or "")
    if payload is None or query.message is None or isinstance(query.message, InaccessibleMessage):
        await query.answer(text("button_expired", language), show_alert=False)
        return
    await query.answer()
    with contextlib.suppress(TelegramBadRequest):  # already edited, too old, or deleted: harmless
        await query.message.edit_reply_markup(reply_markup=None)
    message = BuyerMessage(
        chat_id=query.message.chat.id,
        user_id=query.from_user.id,
        text=payload,
        language=language,
        kind="callback",
    )
    await relay(bot, conversation, codec, message)


async def on_other_content(message: Message, preferences: LanguagePreferences) -> None:
    await message.answer(text("unsupported_content", await language_of(message.from_user, preferences)))


def buyer_router() -> Router:
    """A fresh router per dispatcher (no module-level state)."""
    router = Router(name="buyer")
    router.message.filter(F.chat.type == ChatType.PRIVATE)
    router.edited_message.filter(F.chat.type == ChatType.PRIVATE)
    router.message.register(on_start, CommandStart())
    router.message.register(on_help, Command("help"))
    router.message.register(on_lang, Command("lang"))
    router.message.register(on_intent_command, Command(*COMMAND_INTENTS))
    router.message.register(on_text, F.text)
    router.message.register(on_attachment, F.photo | F.document)
    router.edited_message.register(on_edited_text, F.text)
    router.callback_query.register(on_lang_button, F.data.startswith("lang:"))
    router.callback_query.register(on_button, F.data)
    router.message.register(on_other_content)
    return router
