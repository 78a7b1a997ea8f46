"""Composition root of the bot process: builds clients, storage and the dispatcher, then runs one mode."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import timedelta
from pathlib import Path

from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import Update
from pydantic import SecretStr
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.app import BotServices, KeyValue, build_dispatcher, build_services
from bot.commands import BlockedChats, set_commands_eventually
from bot.config import BotMode, BotSettings, ConfigError, load_settings
from bot.demo import DemoSettings, DemoWorld, demo_router
from bot.handoff.hours import BusinessHours
from bot.handoff.replies import CannedReplies
from bot.handoff.service import HandoffService, HandoffSettings
from bot.handoff.telegram import TelegramMessenger
from bot.http import Routes, readiness_route, serve_health, serve_webhook
from bot.i18n import language_from_telegram
from bot.intake import IntakeEntry, IntakeStore, IntakeWorker, MemoryIntakeStore, RedisIntakeStore
from bot.journal import (
    DurableOutbox,
    JournalStore,
    MemoryJournal,
    RedisJournal,
    RedisRateBudget,
    send_scope,
)
from bot.kv import MemoryKeyValueStore, RedisKeyValueStore
from bot.metrics import BotMetrics, MeteredAssistant, MeteredHandoffRepository, UpdateMetrics, sample_pending
from bot.middlewares import OutgoingLogMiddleware
from bot.ops.setup import Observability, build_observability
from bot.ordering import install_outermost
from bot.outbox import Outbox
from bot.platform_events import OutboxNotifier, PlatformEventsReceiver, languages_from_conversation_log
from bot.receiving import Poller, WebhookReceiver
from bot.retention import purge_forever
from bot.sending import send_replies
from bot.services.pending import MemoryPendingStore, PendingStore, RedisPendingStore
from bot.terminal import TERMINAL_TOKEN, TerminalChat, TerminalSession, open_when_ready
from bot.terminal_staff import StaffEndpoints
from integrations.hygiene import clean_json_loads
from integrations.metrics import MeteredTransport
from integrations.platform.client import PlatformClient
from integrations.platform.errors import PlatformError, Unavailable
from integrations.platform.models import EVENT_TYPES
from integrations.privacy import install_log_redaction
from integrations.rasa import ActionServerProbe, BotReply, RasaClient
from integrations.rasa.tracker import RasaTracker
from integrations.storage.db import default_database_url, make_engine, make_sessionmaker, upgrade_to_head
from integrations.storage.repositories import ConversationLog

log = logging.getLogger("bot")


def make_redis(url: str) -> Redis:
    """One pooled client; stale pooled connections are health-checked and failed commands retried with
    backoff, so a Redis restart costs a few failed attempts, not a dead process."""
    return Redis.from_url(
        url,
        health_check_interval=5,
        socket_connect_timeout=3,
        socket_timeout=10,
        socket_keepalive=True,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


async def run(settings: BotSettings) -> None:
    async with AsyncExitStack() as stack:
        database_url = settings.database_url or default_database_url(Path(settings.var_dir))
        await upgrade_to_head(database_url)
        engine = make_engine(database_url)
        stack.push_async_callback(engine.dispose)
        sessions = make_sessionmaker(engine)
        conversation_log = ConversationLog(sessions)
        metrics = BotMetrics()
        retention = asyncio.create_task(purge_forever(conversation_log, settings.conversation_retention_days))
        stack.callback(retention.cancel)

        storage: BaseStorage
        kv: KeyValue
        pending: PendingStore
        intake: IntakeStore
        journal: JournalStore
        redis: Redis | None = None
        if settings.redis_url:
            redis = make_redis(settings.redis_url)
            stack.push_async_callback(redis.aclose)
            await redis.ping()
            storage, kv, pending = RedisStorage(redis), RedisKeyValueStore(redis), RedisPendingStore(redis)
            intake = RedisIntakeStore(redis, partitions=settings.intake_partitions)
            journal = RedisJournal(redis)
        else:
            storage, kv, pending = MemoryStorage(), MemoryKeyValueStore(), MemoryPendingStore()
            intake, journal = MemoryIntakeStore(partitions=settings.intake_partitions), MemoryJournal()

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
        first: list[Router] = []
        if settings.effective_mode is BotMode.TERMINAL:  # /demo: the demo world's controls, terminal only
            demo_world = DemoWorld(
                platform,
                str(settings.platform_api_url),
                DemoSettings().sandbox_admin_key.get_secret_value(),
            )
            stack.push_async_callback(demo_world.aclose)
            first.append(demo_router())
        dispatcher = build_dispatcher(storage, services, first)
        if first:
            dispatcher["demo_world"] = demo_world
        install_outermost(dispatcher, UpdateMetrics(metrics))  # counts from processing, before the chat queue
        sampler = asyncio.create_task(sample_pending(metrics, pending))
        stack.callback(sampler.cancel)
        observability = build_observability(settings, metrics, engine, platform)
        ready_checks: dict[str, Callable[[], Awaitable[bool]]] = {
            "rasa": rasa.is_ready,
            "actions": probe.healthy,
        }
        if settings.effective_mode is BotMode.TERMINAL:
            await _run_terminal(settings, dispatcher, services, stack, ready_checks, observability)
        else:
            await _run_telegram(
                settings, dispatcher, services, stack, ready_checks, intake, journal, redis, observability
            )


async def _run_terminal(
    settings: BotSettings,
    dispatcher: Dispatcher,
    services: BotServices,
    stack: AsyncExitStack,
    ready_checks: dict[str, Callable[[], Awaitable[bool]]],
    observability: Observability | None = None,
) -> None:
    """The terminal demo: Telegram is played by :class:`TerminalSession` (the buyer's chat printed here, the
    staff chats served to ``make demo-staff``); the send queue, handoff and platform events are the bot's own."""
    default = DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True)
    session = TerminalSession(agents_chat_id=settings.agents_chat_id)
    bot = Bot(TERMINAL_TOKEN, session=session, default=default)
    outbox = Outbox(bot, on_blocked=BlockedChats(services.kv).mark)
    session.middleware(outbox.request_middleware())
    session.middleware(OutgoingLogMiddleware(services.conversation_log))
    if observability is not None:  # /metrics and /ops beside the terminal chat (make demo)
        observability.watch_session(session)
        observability.watch_outbox(outbox)
    await outbox.start()
    stack.push_async_callback(outbox.stop, 10.0)
    retrier = asyncio.create_task(retry_pending_forever(services, bot))
    stack.callback(retrier.cancel)
    if services.handoff is not None:
        services.handoff.attach(TelegramMessenger(bot))
        sla_timer = asyncio.create_task(services.handoff.run_sla_timer())
        stack.callback(sla_timer.cancel)
    routes: list[Routes] = [readiness_route(ready_checks), *(observability.routes if observability else [])]
    routes.append(StaffEndpoints(session, dispatcher, bot).register)  # make demo-staff reads/writes here
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
            subscriber = asyncio.create_task(
                subscribe_when_reachable(services.platform, str(settings.platform_events_url), settings)
            )
            stack.callback(subscriber.cancel)
    # the demo opens the chat once Rasa is ready, or at the time the stack set (make demo: within a minute)
    await open_when_ready(ready_checks["rasa"], DemoSettings().terminal_open_by)
    await serve_terminal_http(settings, routes, stack)
    language = language_from_telegram(None)
    await TerminalChat(dispatcher, bot, session, language, ready=ready_checks["rasa"]).run()


async def subscribe_when_reachable(
    platform: PlatformClient, url: str, settings: BotSettings, retry_seconds: float = 3.0
) -> None:
    """``subscribe_to_platform_events`` for the demo, where the platform may start after the bot."""
    assert settings.platform_webhook_secret is not None
    while True:
        try:
            await platform.subscribe_webhook(
                url, list(EVENT_TYPES), settings.platform_webhook_secret.get_secret_value()
            )
            return
        except Unavailable as exc:
            log.info("platform not reachable yet for the events subscription (%s); retrying", exc)
        except PlatformError as exc:
            log.error("could not subscribe %s to platform events: %s", url, exc)
            return
        await asyncio.sleep(retry_seconds)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)


async def _run_telegram(
    settings: BotSettings,
    dispatcher: Dispatcher,
    services: BotServices,
    stack: AsyncExitStack,
    ready_checks: dict[str, Callable[[], Awaitable[bool]]],
    intake: IntakeStore,
    journal: JournalStore,
    redis: Redis | None,
    observability: Observability | None = None,
) -> None:
    """Polling or webhook: Telegram → durable intake → per-chat processing → durable outbox → Telegram.

    Shutdown (SIGTERM/SIGINT), in this order: stop taking updates (the poller stops, the webhook answers
    503); stop the background senders; let in-flight updates finish within the grace time and hand the
    others back to the intake; drain the outbox; stop the HTTP server; then the clients close (the exit
    stack), never under a running handler.
    """
    stop = asyncio.Event()
    _stop_on_signals(stop)
    mode = settings.effective_mode
    default = DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True)
    assert settings.telegram_bot_token is not None  # guaranteed by BotSettings for these modes
    api = TelegramAPIServer.from_base(str(settings.telegram_api_base))
    # every string Telegram sends is cleaned as it is decoded (NUL, lone surrogates): the edge of the bot
    http_session = AiohttpSession(api=api, json_loads=clean_json_loads)
    bot = Bot(settings.telegram_bot_token.get_secret_value(), session=http_session, default=default)
    stack.push_async_callback(http_session.close)
    durable = DurableOutbox(journal, intake.partitions)
    budget = RedisRateBudget(redis, bot.id) if redis is not None else None
    outbox = Outbox(bot, on_blocked=BlockedChats(services.kv).mark, shared_budget=budget)
    # outermost: every chat-bound write is journaled (sent once, survives a crash), then goes through the
    # one send queue (pacing, 429s); then it is logged once, when sent
    http_session.middleware(durable.request_middleware())
    http_session.middleware(outbox.request_middleware())
    http_session.middleware(OutgoingLogMiddleware(services.conversation_log))
    if observability is not None:
        observability.watch_session(http_session)
        observability.watch_outbox(outbox)
    await outbox.start()
    menu = asyncio.create_task(set_commands_eventually(bot))  # cosmetic: retried, never fatal
    stack.callback(menu.cancel)

    async def process(entry: IntakeEntry) -> None:
        update = Update.model_validate(entry.update, context={"bot": bot})
        with send_scope(f"u:{bot.id}:{entry.update_id}", entry.partition):
            await dispatcher.feed_update(bot, update, intake_redelivery=entry.redelivered)

    async def take_over(partition: int) -> None:
        await durable.replay(bot, partition)

    worker = IntakeWorker(intake, process, on_acquire=take_over)
    background = [
        asyncio.create_task(retry_pending_forever(services, bot, owns=worker.owns)),
        asyncio.create_task(flush_journal_forever(durable)),
    ]
    if services.handoff is not None:
        services.handoff.attach(TelegramMessenger(bot))
        background.append(asyncio.create_task(services.handoff.run_sla_timer()))
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

    poller: Poller | None = None
    webhook: WebhookReceiver | None = None
    if mode is BotMode.WEBHOOK:
        assert settings.webhook_url is not None and settings.webhook_secret is not None
        webhook = WebhookReceiver(intake, settings.webhook_secret.get_secret_value())
        runner = await serve_webhook(settings, webhook, routes)
        await set_webhook_with_retries(
            bot,
            str(settings.webhook_url),
            settings.webhook_secret.get_secret_value(),
            dispatcher.resolve_used_update_types(),
        )
    else:
        runner = await serve_health(settings.bot_http_host, settings.bot_http_port, routes)
        await bot.delete_webhook(drop_pending_updates=False)
        poller = Poller(bot, intake, allowed_updates=dispatcher.resolve_used_update_types())
        log.info("polling %s", settings.telegram_api_base)
    tasks = [asyncio.create_task(worker.run(), name="intake-worker")]
    if poller is not None:
        tasks.append(asyncio.create_task(poller.run(), name="poller"))
    stopped = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopped and task.exception() is not None:
                log.error("%s failed; shutting down", task.get_name(), exc_info=task.exception())
    finally:
        log.info("shutting down: no new updates, finishing in-flight ones, draining the outbox")
        grace = settings.shutdown_timeout_seconds
        if poller is not None:
            poller.stop()
        if webhook is not None:
            webhook.stop()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await worker.stop(timeout=grace * 0.6)
        for task in [stopped, *tasks]:
            task.cancel()
        await asyncio.gather(stopped, *tasks, return_exceptions=True)
        await outbox.stop(grace * 0.4)
        await durable.flush_unrecorded()
        await runner.cleanup()
        log.info("stopped taking and sending; closing clients")


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


async def set_webhook_with_retries(
    bot: Bot, url: str, secret: str, allowed_updates: list[str], attempts: int = 6
) -> None:
    """Point Telegram at this process; a 429 or a network error right after a restart is retried."""
    for attempt in range(1, attempts + 1):
        try:
            await bot.set_webhook(url, secret_token=secret, allowed_updates=allowed_updates)
            log.info("webhook set to %s", url)
            return
        except TelegramRetryAfter as exc:
            delay = float(exc.retry_after)
        except TelegramNetworkError:
            if attempt == attempts:
                raise
            delay = float(2**attempt)
        log.warning("setWebhook did not go through (attempt %d); retrying in %.0fs", attempt, delay)
        await asyncio.sleep(delay)
    raise RuntimeError(f"setWebhook failed {attempts} times")


async def serve_terminal_http(settings: BotSettings, routes: list[Routes], stack: AsyncExitStack) -> None:
    """The terminal chat's HTTP side (health, /metrics, /ops, platform events, the staff terminal's
    endpoints), if the port is free; the chat works without it."""
    try:
        runner = await serve_health(settings.bot_http_host, settings.bot_http_port, routes)
    except OSError as exc:
        log.warning(
            "no HTTP server beside the terminal chat (%s:%s): %s",
            settings.bot_http_host,
            settings.bot_http_port,
            exc,
        )
        return
    stack.push_async_callback(runner.cleanup)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def handoff_settings(settings: BotSettings) -> HandoffSettings:
    return HandoffSettings(
        agents_chat_id=settings.agents_chat_id,
        merchant_sla=timedelta(minutes=settings.handoff_merchant_sla_minutes),
        hours=BusinessHours.parse(settings.handoff_business_hours, settings.handoff_timezone),
        minutes_per_ticket=settings.handoff_minutes_per_ticket,
        staff_first_names=settings.handoff_staff_first_names,
        replies=CannedReplies.load(Path(settings.handoff_replies_file))
        if settings.handoff_replies_file
        else CannedReplies.load(),
    )


async def retry_pending_forever(
    services: BotServices, bot: Bot, interval: float = 3.0, owns: Callable[[int], bool] | None = None
) -> None:
    """Answer messages kept while the assistant was down, as soon as it is back."""

    async def deliver(chat_id: int, replies: list[BotReply]) -> None:
        await send_replies(bot, chat_id, replies, services.codec)

    while True:
        try:
            await services.conversation.retry_pending(deliver, owns=owns)
        except Exception as exc:
            log.warning("retrying pending buyer messages failed: %s", type(exc).__name__, exc_info=True)
        await asyncio.sleep(interval)


async def flush_journal_forever(durable: DurableOutbox, interval: float = 2.0) -> None:
    """Outcomes of sends that could not be recorded while Redis was down are recorded once it is back."""
    while True:
        await asyncio.sleep(interval)
        with contextlib.suppress(Exception):
            await durable.flush_unrecorded()


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
    log.info("exited")
    # every client, server and task was closed explicitly above; skip the interpreter's teardown of a large
    # process (seconds of CPU on a busy host) so that the orchestrator's grace period goes to draining
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
