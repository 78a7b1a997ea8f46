"""Outer middlewares for the Dispatcher's ``update`` observer: each update once, per chat in order, floods
slowed down instead of dropped.

* ``DeduplicateUpdates``: Telegram redelivers updates a bot did not confirm (crash, webhook timeout); an
  update_id is processed once, and so is an edit Telegram reports twice, through an atomic
  ``set_if_absent`` in Redis (several replicas) or in process.
* ``SerializePerChat``: aiogram polling runs every update as its own task, so a buyer's second message can
  overtake the first (a reply to "KM123" before the reply to "where is my order"). Updates of one chat
  (one forum topic) run one at a time in arrival order; different chats run in parallel.
* ``FloodControl``: a user above ``limit`` messages per ``window`` seconds gets one friendly notice per flood
  episode, and the extra messages are processed later, in order; none is dropped.

Order matters: aiogram registers its own outer middlewares first, and the FSM one awaits the storage
(Redis), which can reorder updates before a later middleware sees them. ``install_outermost`` puts these in
front, in the order given; use ``SerializePerChat``, then ``DeduplicateUpdates``, then ``FloodControl``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiogram import Bot, Dispatcher
from aiogram.dispatcher.middlewares.base import BaseMiddleware
from aiogram.dispatcher.middlewares.user_context import UserContextMiddleware
from aiogram.enums import ChatType
from aiogram.types import Message, TelegramObject, Update

from bot.i18n import Language, language_from_telegram

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

FLOOD_NOTICE: dict[Language, str] = {
    "zh": "您发得有点快啦～消息都收到了，我会按顺序逐条回复，请稍等片刻。",
    "en": "You are sending messages a little fast. I have them all and will answer each one in order - "
    "please give me a moment.",
}


class AtomicStore(Protocol):
    """What ``bot.kv.MemoryKeyValueStore`` and ``RedisKeyValueStore`` offer."""

    async def set_if_absent(self, key: str, value: str, ttl_seconds: int) -> bool: ...


class NoticeSender(Protocol):
    async def __call__(self, bot: Bot, chat_id: int, text: str) -> None: ...


def install_outermost(dispatcher: Dispatcher, *middlewares: BaseMiddleware) -> None:
    """Register ``middlewares`` on ``dispatcher.update`` ahead of aiogram's built-in outer middlewares.

    Only the public register/unregister API is used: the existing ones are taken off and put back after.
    """
    manager = dispatcher.update.outer_middleware
    existing = list(manager)
    for middleware in existing:
        manager.unregister(middleware)
    for middleware in middlewares:
        manager.register(middleware)
    for middleware in existing:
        manager.register(middleware)


def _edited_message(update: Update) -> Message | None:
    return update.edited_message or update.edited_channel_post or update.edited_business_message


def edit_fingerprint(message: Message) -> str:
    """One edit of one message: same chat, message, edit time and content."""
    content = message.text or message.caption or ""
    media = ""
    if message.photo:
        media = message.photo[-1].file_unique_id
    elif message.document:
        media = message.document.file_unique_id
    digest = hashlib.sha256(f"{content}\x00{media}".encode()).hexdigest()[:16]
    return f"{message.chat.id}:{message.message_id}:{message.edit_date or 0}:{digest}"


class DeduplicateUpdates(BaseMiddleware):
    """Process each ``update_id`` once; also each edit once (Telegram may report one edit twice).

    Keys live a little longer than the 24 hours Telegram keeps an unconfirmed update. A key is claimed
    before processing (at most once): an update whose handler was cut short by a crash is not replayed,
    since that could send a buyer the same answer twice. If the store is down, updates are processed
    anyway (a rare double beats a silent bot).
    """

    def __init__(self, store: AtomicStore, *, ttl_seconds: int = 25 * 3600, prefix: str = "seen:") -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._prefix = prefix
        self.skipped = 0
        """Duplicates skipped so far (for metrics)."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        if data.get("intake_redelivery"):
            # handed back by the durable intake after a crash or a failed attempt: this very update was not
            # finished, so its claim must not hide it (the outbox journal keeps replies from doubling)
            return await handler(event, data)
        bot = data.get("bot")
        scope = f"{self._prefix}{bot.id if isinstance(bot, Bot) else 0}:"
        if not await self._claim(f"{scope}u:{event.update_id}"):
            return self._skip(event, "update redelivered")
        edited = _edited_message(event)
        if edited is not None and not await self._claim(f"{scope}e:{edit_fingerprint(edited)}"):
            return self._skip(event, "edit already handled")
        return await handler(event, data)

    async def _claim(self, key: str) -> bool:
        try:
            return await self._store.set_if_absent(key, "1", self._ttl)
        except Exception:
            log.warning("dedupe store unavailable; processing %s anyway", key, exc_info=True)
            return True

    def _skip(self, update: Update, why: str) -> None:
        self.skipped += 1
        log.info("skipping update %s: %s", update.update_id, why)


@dataclass(eq=False, slots=True)
class _Gate:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holders: int = 0
    """Updates holding or waiting for the lock; the gate is forgotten when it drops to 0."""


def conversation_key(update: Update) -> tuple[int, int] | None:
    """(chat id, forum topic id or 0); the user id for chat-less updates (inline queries...)."""
    context = UserContextMiddleware.resolve_event_context(update)
    if context.chat is not None:
        return context.chat.id, context.thread_id or 0
    if context.user is not None:
        return context.user.id, 0
    return None


class SerializePerChat(BaseMiddleware):
    """One update at a time per chat (per forum topic), in arrival order; chats run in parallel.

    Relies on ``asyncio.Lock`` granting waiters in FIFO order and on the lock being requested before any
    await in the update's task (hence ``install_outermost``). Locks live only while an update holds or
    waits for them.
    """

    def __init__(self) -> None:
        self._gates: dict[tuple[int, int], _Gate] = {}

    @property
    def active_chats(self) -> int:
        return len(self._gates)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        key = conversation_key(event) if isinstance(event, Update) else None
        if key is None:
            return await handler(event, data)
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = _Gate()
        gate.holders += 1
        try:
            async with gate.lock:
                return await handler(event, data)
        finally:
            gate.holders -= 1
            if gate.holders == 0:
                del self._gates[key]


async def send_notice_with_bot(bot: Bot, chat_id: int, text: str) -> None:
    await bot.send_message(chat_id, text, parse_mode=None)


@dataclass(slots=True)
class _FloodState:
    slots: deque[float] = field(default_factory=deque)
    """Times at which this user's recent messages were (or will be) let through."""
    episode_until: float = 0.0


class FloodControl(BaseMiddleware):
    """At most ``limit`` messages per ``window`` seconds per user; extra ones wait for a free slot.

    Each message reserves its slot when it arrives, so delayed messages keep their order even without
    ``SerializePerChat``. One notice (zh/en from the user's Telegram language) per flood episode; the
    episode ends once the user has had nothing delayed for ``window`` seconds. Only ``message`` updates
    count (button presses must be answered within seconds); by default only in private chats, so agents
    in their group are never slowed down. State is per process.
    """

    def __init__(
        self,
        *,
        limit: int = 6,
        window: float = 10.0,
        private_only: bool = True,
        send_notice: NoticeSender = send_notice_with_bot,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("FloodControl needs limit >= 1 and window > 0")
        self._limit = limit
        self._window = window
        self._private_only = private_only
        self._send_notice = send_notice
        self._clock = clock
        self._sleep = sleep
        self._users: dict[int, _FloodState] = {}
        self._last_sweep = clock()
        self.delayed = 0
        """Messages delayed so far (for metrics)."""
        self.notices = 0

    @property
    def tracked_users(self) -> int:
        return len(self._users)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        message = event.message if isinstance(event, Update) else None
        if message is None or message.from_user is None or not self._applies_to(message):
            return await handler(event, data)
        now = self._clock()
        self._sweep(now)
        state = self._users.setdefault(message.from_user.id, _FloodState())
        slot = self._reserve(state, now)
        if slot > now:
            self.delayed += 1
            if now >= state.episode_until:
                await self._notify(data, message)
            state.episode_until = slot + self._window
            await self._sleep_until(slot)
        return await handler(event, data)

    def _applies_to(self, message: Message) -> bool:
        return not self._private_only or message.chat.type == ChatType.PRIVATE

    def _reserve(self, state: _FloodState, now: float) -> float:
        """The earliest time with fewer than ``limit`` slots in the preceding window; synchronous."""
        slots = state.slots
        while slots and slots[0] <= now - self._window:
            slots.popleft()
        slot = now if len(slots) < self._limit else max(now, slots[-self._limit] + self._window)
        slots.append(slot)
        return slot

    async def _sleep_until(self, moment: float) -> None:
        wait = moment - self._clock()
        if wait > 0:
            await self._sleep(wait)

    async def _notify(self, data: dict[str, Any], message: Message) -> None:
        bot = data.get("bot")
        assert message.from_user is not None
        language = language_from_telegram(message.from_user.language_code)
        self.notices += 1
        if not isinstance(bot, Bot):
            return
        try:
            await self._send_notice(bot, message.chat.id, FLOOD_NOTICE[language])
        except Exception:
            log.warning("could not send the flood notice to chat %s", message.chat.id, exc_info=True)

    def _sweep(self, now: float) -> None:
        """Forget users who are calm again (at most once per window), so the table stays small."""
        if now - self._last_sweep < self._window:
            return
        self._last_sweep = now
        calm = [
            user_id
            for user_id, state in self._users.items()
            if (not state.slots or state.slots[-1] <= now - self._window) and state.episode_until <= now
        ]
        for user_id in calm:
            del self._users[user_id]
