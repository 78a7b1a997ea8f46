"""The bot's command menu in both languages, and buyers who blocked the bot."""

from __future__ import annotations

import asyncio
import logging

from aiogram import Bot
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats

from bot.kv import MemoryKeyValueStore, RedisKeyValueStore

log = logging.getLogger(__name__)

COMMANDS = {
    "zh": [
        ("start", "开始 / 绑定账号"),
        ("orders", "我的订单"),
        ("help", "帮助"),
        ("lang", "切换语言 / Language"),
        ("human", "转人工客服"),
    ],
    "en": [
        ("start", "Start / link your account"),
        ("orders", "My orders"),
        ("help", "Help"),
        ("lang", "Language / 切换语言"),
        ("human", "Talk to a person"),
    ],
}
BLOCKED_TTL_SECONDS = 90 * 24 * 3600


async def set_commands_eventually(
    bot: Bot, first_delay: float = 1.0, max_delay: float = 300.0, attempts: int | None = None
) -> bool:
    """The command menu is cosmetic: retried in the background with backoff, never fatal. True once set."""
    delay = first_delay
    attempt = 0
    while attempts is None or attempt < attempts:
        attempt += 1
        try:
            await set_commands(bot)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "could not set the command menu (attempt %d, retry in %.0f s): %r", attempt, delay, exc
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
            continue
        return True
    return False


async def set_commands(bot: Bot) -> None:
    """Chinese for Chinese Telegram apps, English for every other language."""
    scope = BotCommandScopeAllPrivateChats()
    for language, language_code in (("en", None), ("zh", "zh")):
        commands = [BotCommand(command=c, description=d) for c, d in COMMANDS[language]]
        await bot.set_my_commands(commands, scope=scope, language_code=language_code)


class BlockedChats:
    """Remembers chats that refuse the bot, so nothing keeps retrying them."""

    def __init__(self, store: MemoryKeyValueStore | RedisKeyValueStore) -> None:
        self._store = store

    async def mark(self, chat_id: int | str) -> None:
        log.info("chat %s blocked the bot; its pending messages are dropped", chat_id)
        await self._store.set(f"blocked:{chat_id}", "1", BLOCKED_TTL_SECONDS)

    async def is_blocked(self, chat_id: int | str) -> bool:
        return await self._store.get(f"blocked:{chat_id}") is not None
