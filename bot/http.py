"""The bot's HTTP side: health/readiness endpoints and the Telegram webhook (aiohttp)."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from bot.config import BotSettings
from bot.receiving import SECRET_HEADER, WebhookReceiver

log = logging.getLogger(__name__)
Routes = Callable[[web.Application], None]
WEBHOOK_PATH = "/telegram/webhook"


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


async def serve_webhook(
    settings: BotSettings, receiver: WebhookReceiver, extra_routes: Sequence[Routes] = ()
) -> web.AppRunner:
    """Serve Telegram's webhook at ``WEBHOOK_PATH`` (``WebhookReceiver``: 200 only once the update is
    stored, 401 for a wrong secret) next to the health routes; the caller sets the webhook and stops it."""
    assert settings.webhook_secret is not None
    app = web.Application(middlewares=[reject_malformed_updates(settings.webhook_secret.get_secret_value())])
    health_routes(app)
    for add_routes in extra_routes:
        add_routes(app)
    app.router.add_post(WEBHOOK_PATH, receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=5.0)
    await runner.setup()
    await web.TCPSite(runner, settings.bot_http_host, settings.bot_http_port).start()
    return runner
