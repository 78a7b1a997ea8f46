"""Composition root of the bot process: builds clients, storage and the dispatcher, then runs one mode."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.fsm.storage.redis import RedisStorage
from pydantic import SecretStr
from redis.asyncio import Redis

from bot.app import BotServices, KeyValue, build_dispatcher, build_services
from bot.commands import BlockedChats, set_commands_eventually
from bot.config import BotMode, BotSettings, ConfigError, load_settings
from bot.handoff.hours import BusinessHours
from bot.handoff.service import HandoffService, HandoffSettings
from bot.handoff.telegram import TelegramMessenger
from bot.http import Routes, readiness_route, run_webhook, serve_health
from bot.i18n import language_from_telegram
from bot.kv import MemoryKeyValueStore, RedisKeyValueStore
from bot.metrics import BotMetrics, MeteredAssistant, MeteredHandoffRepository, UpdateMetrics, sample_pending
from bot.middlewares import OutgoingLogMiddleware
from bot.ops.setup import Observability, build_observability
from bot.ordering import install_outermost
from bot.outbox import Outbox
from bot.platform_events import OutboxNotifier, PlatformEventsReceiver, languages_from_conversation_log
from bot.retention import purge_forever
from bot.sending import send_replies
from bot.services.pending import MemoryPendingStore, PendingStore, RedisPendingStore
from bot.terminal import TERMINAL_TOKEN, TerminalChat, TerminalSession
from integrations.hygiene import clean_json_loads
from integrations.metrics import MeteredTransport
from integrations.platform.client import PlatformClient
from integrations.platform.errors import PlatformError
from integrations.platform.models import EVENT_TYPES
from integrations.privacy import install_log_redaction
from integrations.rasa import ActionServerProbe, BotReply, RasaClient
from integrations.rasa.tracker import RasaTracker
from integrations.storage.db import default_database_url, make_engine, make_sessionmaker, upgrade_to_head
from integrations.storage.repositories import ConversationLog

log = logging.getLogger("bot")


async def run(settings: BotSettings) -> None:
    async with AsyncExitStack() as stack:
        database_url = settings.database_url or default_database_url(Path(settings.var_dir))
        await upgrade_to_head(database_url)
        engine = make_engine(database_url)
        stack.push_async_callback(engine.dispose)
        sessions = make_sessionmaker(engine)
        conversation_log = ConversationLog(sessions)
        retention = asyncio.create_task(purge_forever(conversation_log, settings.conversation_retention_days))
        stack.callback(retention.cancel)
        metrics = BotMetrics()

        storage: BaseStorage
        kv: KeyValue
        pending: PendingStore
        if settings.redis_url:
            redis = Redis.from_url(settings.redis_url)
            stack.push_async_callback(redis.aclose)
            await redis.ping()
            storage, kv, pending = RedisStorage(redis), RedisKeyValueStore(redis), RedisPendingStore(redis)
        else:
            storage, kv, pending = MemoryStorage(), MemoryKeyValueStore(), MemoryPendingStore()

        rasa = RasaClient(
            str(settings.rasa_url),
            timeout=settings.rasa_timeout_seconds,
            auth_token=_secret(settings.rasa_auth_token),
            metadata_secret=_secret(settings.metadata_secret),
        )
        stack.push_async_callback(rasa.aclose)
        platform = PlatformClient(
            str(settings.platform_api_url),
            settings.platform_api_key.get_secret_value(),
            transport=MeteredTransport(metrics.platform),
        )
        stack.push_async_callback(platform.aclose)
        tracker = RasaTracker(str(settings.rasa_url), token=_secret(settings.rasa_auth_token))
        stack.push_async_callback(tracker.aclose)
        handoff = HandoffService(
            MeteredHandoffRepository(sessions, metrics),
            platform,
            tracker,
            kv,
            conversation_log,
            handoff_settings(settings),
        )
        probe = ActionServerProbe(str(settings.action_server_url))
        stack.push_async_callback(probe.aclose)
        services = build_services(
            MeteredAssistant(rasa, metrics),
            conversation_log,
            kv,
            platform,
            pending,
            handoff,
            actions_healthy=probe.healthy,
        )
        dispatcher = build_dispatcher(storage, services)
        install_outermost(
            dispatcher, UpdateMetrics(metrics)
        )  # counts from arrival, before the per-chat queue
        sampler = asyncio.create_task(sample_pending(metrics, pending))
        stack.callback(sampler.cancel)
        observability = build_observability(settings, metrics, engine, platform)
        await _run_mode(
            settings,
            dispatcher,
            services,
            stack,
            {"rasa": rasa.is_ready, "actions": probe.healthy},
            observability,
        )


async def _run_mode(
    settings: BotSettings,
    dispatcher: Dispatcher,
    services: BotServices,
    stack: AsyncExitStack,
    ready_checks: dict[str, Callable[[], Awaitable[bool]]],
    observability: Observability | None = None,
) -> None:
    mode = settings.effective_mode
    default = DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True)
    if mode is BotMode.TERMINAL:
        session = TerminalSession()
        session.middleware(OutgoingLogMiddleware(services.conversation_log))
        if observability is not None:  # /metrics and /ops beside the terminal chat (make demo)
            observability.watch_session(session)
            await serve_terminal_http(settings, observability, stack)
        bot = Bot(TERMINAL_TOKEN, session=session, default=default)
        language = language_from_telegram(None)
        retrier = asyncio.create_task(retry_pending_forever(services, bot))
        try:
            await TerminalChat(dispatcher, bot, session, language).run()
        finally:
            retrier.cancel()
        return

    assert settings.telegram_bot_token is not None  # guaranteed by BotSettings for these modes
    api = TelegramAPIServer.from_base(str(settings.telegram_api_base))
    # every string Telegram sends is cleaned as it is decoded (NUL, lone surrogates): the edge of the bot
    http_session = AiohttpSession(api=api, json_loads=clean_json_loads)
    bot = Bot(settings.telegram_bot_token.get_secret_value(), session=http_session, default=default)
    stack.push_async_callback(http_session.close)
    outbox = Outbox(bot, on_blocked=BlockedChats(services.kv).mark)
    # outermost: every chat-bound write goes through the one send queue; then it is logged once, when sent
    http_session.middleware(outbox.request_middleware())
    http_session.middleware(OutgoingLogMiddleware(services.conversation_log))
    if observability is not None:
        observability.watch_session(http_session)
        observability.watch_outbox(outbox)
    await outbox.start()
    stack.push_async_callback(outbox.stop, 10.0)
    menu = asyncio.create_task(set_commands_eventually(bot))  # cosmetic: retried, never fatal
    stack.callback(menu.cancel)
    retrier = asyncio.create_task(retry_pending_forever(services, bot))
    stack.callback(retrier.cancel)
    if services.handoff is not None:
        services.handoff.attach(TelegramMessenger(bot))
        sla_timer = asyncio.create_task(services.handoff.run_sla_timer())
        stack.callback(sla_timer.cancel)
    routes: list[Routes] = [readiness_route(ready_checks), *(observability.routes if observability else [])]
    if settings.platform_webhook_secret is not None:  # POST /platform/events: the platform's signed events
        receiver = PlatformEventsReceiver(
            settings.platform_webhook_secret.get_secret_value(),
            services.kv,
            OutboxNotifier(outbox),
            language_of=languages_from_conversation_log(
                services.conversation_log, preferences=services.preferences
            ),
        )
        routes.append(receiver.register)
        if settings.platform_events_url is not None:
            await subscribe_to_platform_events(services.platform, str(settings.platform_events_url), settings)
    if mode is BotMode.WEBHOOK:
        await run_webhook(settings, dispatcher, bot, routes)
        return
    health = await serve_health(settings.bot_http_host, settings.bot_http_port, routes)
    stack.push_async_callback(health.cleanup)
    await bot.delete_webhook(drop_pending_updates=False)
    log.info("polling %s", settings.telegram_api_base)
    await dispatcher.start_polling(bot, allowed_updates=dispatcher.resolve_used_update_types())


async def serve_terminal_http(
    settings: BotSettings, observability: Observability, stack: AsyncExitStack
) -> None:
    """The terminal chat has no webhook; its HTTP side serves health, /metrics and /ops if the port is free."""
    try:
        runner = await serve_health(settings.bot_http_host, settings.bot_http_port, observability.routes)
    except OSError as exc:
        log.warning(
            "no HTTP server beside the terminal chat (%s:%s): %s",
            settings.bot_http_host,
            settings.bot_http_port,
            exc,
        )
        return
    stack.push_async_callback(runner.cleanup)


async def subscribe_to_platform_events(platform: PlatformClient, url: str, settings: BotSettings) -> None:
    """Ask the platform to send its order and escalation events here. The platform keeps one subscription
    per URL (a restart replaces it, with the current secret and events), so events are not delivered twice."""
    assert settings.platform_webhook_secret is not None
    try:
        await platform.subscribe_webhook(
            url, list(EVENT_TYPES), settings.platform_webhook_secret.get_secret_value()
        )
    except PlatformError as exc:
        log.error("could not subscribe %s to platform events: %s", url, exc)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def handoff_settings(settings: BotSettings) -> HandoffSettings:
    return HandoffSettings(
        agents_chat_id=settings.agents_chat_id,
        merchant_sla=timedelta(minutes=settings.handoff_merchant_sla_minutes),
        hours=BusinessHours.parse(settings.handoff_business_hours, settings.handoff_timezone),
        minutes_per_ticket=settings.handoff_minutes_per_ticket,
    )


async def retry_pending_forever(services: BotServices, bot: Bot, interval: float = 3.0) -> None:
    """Answer messages kept while the assistant was down, as soon as it is back."""

    async def deliver(chat_id: int, replies: list[BotReply]) -> None:
        await send_replies(bot, chat_id, replies, services.codec)

    while True:
        try:
            await services.conversation.retry_pending(deliver)
        except Exception:
            log.exception("retrying pending buyer messages failed")
        await asyncio.sleep(interval)


def configure_logging(settings: BotSettings) -> None:
    """The terminal chat keeps the console for the conversation; its logs go to var/log/bot-terminal.log."""
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    if settings.effective_mode is BotMode.TERMINAL:
        log_dir = Path(settings.var_dir) / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        logging.basicConfig(level=logging.INFO, format=fmt, filename=log_dir / "bot-terminal.log")
    else:
        logging.basicConfig(level=logging.INFO, format=fmt)


def main() -> None:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings)
    install_log_redaction(settings.secrets())
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(settings))


if __name__ == "__main__":
    main()
