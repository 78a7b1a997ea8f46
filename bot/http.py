"""The bot's HTTP side: health/readiness endpoints and the Telegram webhook (aiohttp)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.config import BotSettings

log = logging.getLogger(__name__)
Routes = Callable[[web.Application], None]
WEBHOOK_PATH = "/telegram/webhook"


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def health_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _healthz)


async def serve_health(host: str, port: int, extra_routes: Sequence[Routes] = ()) -> web.AppRunner:
    app = web.Application()
    health_routes(app)
    for add_routes in extra_routes:
        add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def run_webhook(
    settings: BotSettings, dispatcher: Dispatcher, bot: Bot, extra_routes: Sequence[Routes] = ()
) -> None:
    """Serve Telegram's webhook; requests without the right secret token get 401 and are not processed."""
    assert settings.webhook_url is not None and settings.webhook_secret is not None
    secret = settings.webhook_secret.get_secret_value()
    app = web.Application()
    health_routes(app)
    for add_routes in extra_routes:
        add_routes(app)
    SimpleRequestHandler(dispatcher=dispatcher, bot=bot, secret_token=secret).register(app, path=WEBHOOK_PATH)
    setup_application(app, dispatcher, bot=bot)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, settings.bot_http_host, settings.bot_http_port).start()
    try:
        await bot.set_webhook(
            str(settings.webhook_url),
            secret_token=secret,
            allowed_updates=dispatcher.resolve_used_update_types(),
        )
        log.info("webhook set to %s", settings.webhook_url)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
