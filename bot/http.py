"""The bot's HTTP side: health/readiness endpoints and the Telegram webhook (aiohttp)."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from aiohttp.typedefs import Middleware

from bot.config import BotSettings

log = logging.getLogger(__name__)
Routes = Callable[[web.Application], None]
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def health_routes(app: web.Application) -> None:
    """Liveness: the process answers. Readiness is added by ``readiness_route`` with real checks."""
    app.router.add_get("/healthz", _healthz)


def readiness_route(checks: dict[str, Callable[[], Awaitable[bool]]]) -> Routes:
    """``GET /readyz``: 200 when every dependency answers, else 503 naming the ones that do not."""

    async def readyz(_: web.Request) -> web.Response:
        failing = [name for name, check in checks.items() if not await check()]
        if failing:
            return web.json_response({"status": "not_ready", "waiting_for": failing}, status=503)
        return web.json_response({"status": "ready"})

    def add(app: web.Application) -> None:
        app.router.add_get("/readyz", readyz)

    return add


async def serve_health(host: str, port: int, extra_routes: Sequence[Routes] = ()) -> web.AppRunner:
    app = web.Application()
    health_routes(app)
    for add_routes in extra_routes:
        add_routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def reject_malformed_updates(secret: str) -> Middleware:
    """A Telegram webhook body that is not a JSON update is a client error (400), never a 500 (Telegram
    redelivers a 5xx). Checked after the secret token (a request without it still gets 401 from the
    handler); the body read here is cached by aiohttp for the real handler."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "POST" or request.path != WEBHOOK_PATH:
            return await handler(request)
        if not hmac.compare_digest(request.headers.get(SECRET_HEADER, "").encode(), secret.encode()):
            return await handler(request)
        body = await request.read()
        try:
            update = json.loads(body)
        except (ValueError, RecursionError):
            log.warning("webhook: malformed JSON body (%d bytes) refused", len(body))
            return web.json_response({"ok": False, "error": "malformed JSON"}, status=400)
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            log.warning("webhook: a body that is not an update (%d bytes) refused", len(body))
            return web.json_response({"ok": False, "error": "not a Telegram update"}, status=400)
        return await handler(request)

    return middleware


async def run_webhook(
    settings: BotSettings, dispatcher: Dispatcher, bot: Bot, extra_routes: Sequence[Routes] = ()
) -> None:
    """Serve Telegram's webhook; requests without the right secret token get 401 and are not processed."""
    assert settings.webhook_url is not None and settings.webhook_secret is not None
    secret = settings.webhook_secret.get_secret_value()
    app = web.Application(middlewares=[reject_malformed_updates(secret)])
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
