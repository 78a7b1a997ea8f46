"""A buyer's chosen language (``/lang``), overriding the one their Telegram app reports."""

from __future__ import annotations

from typing import Protocol

from bot.i18n import LANGUAGES, Language, language_from_telegram

PREFERENCE_TTL_SECONDS = 365 * 24 * 3600


class Store(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, ttl_seconds: int) -> None: ...


class LanguagePreferences:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def language_for(self, user_id: int, telegram_language_code: str | None) -> Language:
        chosen = await self._store.get(f"lang:{user_id}")
        if chosen == "zh":
            return "zh"
        if chosen == "en":
            return "en"
        return language_from_telegram(telegram_language_code)

    async def choose(self, user_id: int, language: Language) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"unsupported language {language!r}")
        await self._store.set(f"lang:{user_id}", language, PREFERENCE_TTL_SECONDS)
