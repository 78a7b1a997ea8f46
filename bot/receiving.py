"""How updates reach the durable intake: long polling and the webhook.

Both acknowledge an update to Telegram only once ``IntakeStore.put`` has stored it:

* polling: the ``offset`` sent with the next ``getUpdates`` (which confirms everything below it) moves past
  an update only after it is stored; while the store is down the poller keeps retrying the same update, and
  Telegram keeps the rest;
* webhook: ``200`` after the write, ``503`` when the store cannot take it (Telegram redelivers later),
  ``401`` for a wrong secret, ``400`` for a body that is not an update (a retry would not help).

Stopping: the poller stops between updates (an update being stored is finished first); the webhook answers
``503`` once the bot is stopping, so Telegram keeps the update for the next process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiogram import Bot
from aiogram.client.default import Default
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramRetryAfter
from aiogram.methods import GetUpdates
from aiohttp import web
from pydantic import ValidationError

from bot.intake import Backoff, IntakeStore
from integrations.hygiene import clean_json_loads

log = logging.getLogger(__name__)

Put = Callable[[Mapping[str, Any]], Awaitable[bool]]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


def _unset_default(value: Any) -> Any:
    """aiogram marks bot-side defaults (``parse_mode``, link previews…) with ``Default``: not Telegram data."""
    if isinstance(value, Default):
        return None
    raise TypeError(f"cannot serialise {type(value).__name__} in an update")


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def update_json(update: Any) -> dict[str, Any]:
    """An aiogram ``Update`` as Telegram's JSON (field aliases such as ``from``, no nulls).

    A callback query carries the bot's own message, whose unset fields hold aiogram's ``Default`` markers; they
    are dropped (serialising them used to stop the poller at the first button press)."""
    data: dict[str, Any] = _without_nulls(
        update.model_dump(
            mode="json", exclude_none=True, by_alias=True, fallback=_unset_default, warnings=False
        )
    )
    return data


class Poller:
    """``getUpdates`` long polling into the intake (see the module docstring)."""

    def __init__(
        self,
        bot: Bot,
        intake: IntakeStore,
        *,
        allowed_updates: list[str] | None = None,
        polling_timeout: int = 25,
    ) -> None:
        self._bot = bot
        self._intake = intake
        self._allowed = allowed_updates
        self._timeout = polling_timeout
        self._offset: int | None = None
        self._stop = asyncio.Event()
        self.stored = 0
        self.duplicates = 0

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        backoff = Backoff(base=0.5, cap=30.0)
        while not self._stop.is_set():
            try:
                updates = await self._next_batch()
            except TelegramRetryAfter as exc:
                await self._pause(float(exc.retry_after))
                continue
            except (TelegramNetworkError, TelegramAPIError, OSError) as exc:
                delay = backoff.next()
                log.warning("getUpdates failed (%s); retrying in %.1fs", type(exc).__name__, delay)
                await self._pause(delay)
                continue
            if updates is None:  # stopped while waiting
                return
            backoff.reset()
            for update in updates:
                if not await self._store(update_json(update)):
                    return
                self._offset = update.update_id + 1

    async def _next_batch(self) -> list[Any] | None:
        method = GetUpdates(offset=self._offset, timeout=self._timeout, allowed_updates=self._allowed)
        kwargs: dict[str, Any] = {}
        if self._bot.session.timeout:
            kwargs["request_timeout"] = int(self._bot.session.timeout + self._timeout)
        request = asyncio.ensure_future(self._bot(method, **kwargs))
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({request, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if not request.done():  # nothing fetched is lost: an update is confirmed only by a later offset
            request.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await request
            return None
        return list(request.result())

    async def _store(self, update: dict[str, Any]) -> bool:
        """Keep trying until stored; False when stopped first (the update stays with Telegram)."""
        backoff = Backoff(base=0.2, cap=5.0)
        while True:
            try:
                if await self._intake.put(update):
                    self.stored += 1
                else:
                    self.duplicates += 1
                return True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = backoff.next()
                log.warning(
                    "could not store update %s (%s); Telegram keeps it, retrying in %.1fs",
                    update.get("update_id"),
                    type(exc).__name__,
                    delay,
                )
                if await self._pause(delay):
                    return False

    async def _pause(self, seconds: float) -> bool:
        """Sleep unless stopped first; True when stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()


class WebhookReceiver:
    """``POST`` handler for Telegram's webhook that stores the update before answering 200."""

    def __init__(self, intake: IntakeStore, secret: str) -> None:
        self._intake = intake
        self._secret = secret.encode()
        self._stopping = False
        self.stored = 0
        self.duplicates = 0
        self.refused = 0

    def stop(self) -> None:
        self._stopping = True

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            return web.json_response({"ok": False, "error": "unauthorized"}, status=401)
        if self._stopping:
            return web.json_response({"ok": False, "error": "shutting down"}, status=503)
        try:
            update = clean_json_loads(await request.read())  # NUL, lone surrogates cleaned at the edge
        except (ValueError, UnicodeDecodeError, RecursionError):
            return web.json_response({"ok": False, "error": "body is not JSON"}, status=400)
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            return web.json_response({"ok": False, "error": "not a Telegram update"}, status=400)
        try:
            fresh = await self._intake.put(update)
        except ValidationError:
            return web.json_response({"ok": False, "error": "not a Telegram update"}, status=400)
        except Exception as exc:
            self.refused += 1
            log.warning(
                "could not store update %s (%s); answering 503", update["update_id"], type(exc).__name__
            )
            return web.json_response({"ok": False, "error": "temporarily unavailable"}, status=503)
        if fresh:
            self.stored += 1
        else:
            self.duplicates += 1
        return web.json_response({"ok": True})
