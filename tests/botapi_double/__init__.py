"""A local, in-memory Telegram Bot API server for end-to-end tests of the bot.

async with BotAPIDouble() as double:
    bot = Bot(double.token, session=AiohttpSession(api=TelegramAPIServer.from_base(double.base_url)))
    user = double.create_user("小明")
    double.user_sends_text(user, "/start")
    reply = await double.wait_for_bot_message(user.id)
"""

from .formatting import FormattingError, check_link, detect_entities, format_text, utf16_len
from .models import (
    ApiCall,
    ApiError,
    BotEvent,
    CallbackRecord,
    FakeChat,
    FakeUser,
    FloodLimits,
    ForumTopicState,
    StoredFile,
    UploadedFile,
    WebhookConfig,
    WebhookDelivery,
)
from .server import DEFAULT_TOKEN, TINY_PNG, BotAPIDouble

__all__ = [
    "DEFAULT_TOKEN",
    "TINY_PNG",
    "ApiCall",
    "ApiError",
    "BotAPIDouble",
    "BotEvent",
    "CallbackRecord",
    "FakeChat",
    "FakeUser",
    "FloodLimits",
    "FormattingError",
    "ForumTopicState",
    "StoredFile",
    "UploadedFile",
    "WebhookConfig",
    "WebhookDelivery",
    "check_link",
    "detect_entities",
    "format_text",
    "utf16_len",
]
