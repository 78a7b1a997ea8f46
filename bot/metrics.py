"""The bot's Prometheus metrics and the hooks that feed them, all at the process's boundaries.

- :class:`UpdateMetrics`: an aiogram outer middleware on ``dispatcher.update`` (updates by type; when a
  buyer's message or button press arrived, for the in → out latency).
- :class:`ReplyMetrics`: a session request middleware (replies sent by method and outcome; the first reply
  to a chat after a buyer's update observes the buyer-in → reply-out latency).
- :class:`MeteredAssistant`: wraps the Rasa client (round-trip latency by outcome).
- :class:`MeteredHandoffRepository`: the handoff repository whose audit log counts tickets opened,
  accepted and closed, merchant SLA expiries and CSAT answers.
- :class:`OutboxCollector` and :func:`sample_pending`: outbox depth / 429s and kept buyer messages.
- platform API calls: :class:`integrations.metrics.MeteredTransport` handed to the platform client.

Labels never carry a user, chat, order or ticket id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import TelegramObject, Update
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations.metrics import CONTENT_TYPE, LATENCY_BUCKETS, Exposition, PlatformMetrics
from integrations.rasa import BotReply
from integrations.storage.handoff import HandoffRepository

log = logging.getLogger(__name__)

CSAT_SCORES = frozenset({"1", "2", "3", "4", "5"})
HANDOFF_EVENTS = {"escalated": "opened", "take": "accepted", "close": "closed"}
REPLY_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
_MAX_WAITING_CHATS = 10_000
_WAITING_TTL = 300.0  # a buyer update without a reply within 5 min is forgotten, not observed


class BotMetrics:
    """Every metric of the bot process, registered in the registry its composition root made."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.exposition = Exposition(self.registry)
        r = self.registry
        self.updates = Counter(
            "kmbot_updates_total", "Telegram updates received, by update type", ["type"], registry=r
        )
        self.replies = Counter(
            "kmbot_replies_sent_total",
            "Messages the bot sent (Bot API send* calls), by method and outcome",
            ["method", "outcome"],
            registry=r,
        )
        self.reply_latency = Histogram(
            "kmbot_reply_latency_seconds",
            "Buyer message (or button press) received → first reply to that chat sent",
            buckets=REPLY_LATENCY_BUCKETS,
            registry=r,
        )
        self.rasa = Histogram(
            "kmbot_rasa_request_seconds",
            "Rasa REST round trip, by outcome (ok, unavailable, bad_response, error)",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.platform = PlatformMetrics(r)
        self.pending = Gauge(
            "kmbot_pending_buyer_chats",
            "Chats with buyer messages kept while the assistant was unavailable",
            registry=r,
        )
        self.handoffs = Counter(
            "kmbot_handoffs_total",
            "Handoff tickets by event (opened, accepted, closed)",
            ["event"],
            registry=r,
        )
        self.sla_expired = Counter(
            "kmbot_merchant_sla_expired_total",
            "Tickets the merchant left unanswered past the SLA (moved to the agents)",
            registry=r,
        )
        self.csat = Counter("kmbot_csat_answers_total", "CSAT answers by score (1-5)", ["score"], registry=r)
        self._waiting: OrderedDict[int, float] = OrderedDict()

    # -- buyer in → reply out

    def buyer_waiting(self, chat_id: int, now: float | None = None) -> None:
        """A buyer's update arrived; the first reply to ``chat_id`` after it closes the measurement."""
        if chat_id in self._waiting:
            return  # the earliest unanswered update is what the buyer waits on
        self._waiting[chat_id] = time.monotonic() if now is None else now
        while len(self._waiting) > _MAX_WAITING_CHATS:
            self._waiting.popitem(last=False)

    def replied(self, chat_id: int, now: float | None = None) -> None:
        started = self._waiting.pop(chat_id, None)
        if started is None:
            return
        elapsed = (time.monotonic() if now is None else now) - started
        if elapsed <= _WAITING_TTL:
            self.reply_latency.observe(elapsed)

    # -- handoff audit

    def handoff_event(self, action: str, detail: str) -> None:
        event = HANDOFF_EVENTS.get(action)
        if event is not None:
            self.handoffs.labels(event).inc()
        elif action == "routed_agents" and detail == "sla_expired":
            self.sla_expired.inc()
        elif action == "csat" and detail in CSAT_SCORES:
            self.csat.labels(detail).inc()

    # -- exposition

    def routes(self, app: web.Application) -> None:
        """``GET /metrics`` on the bot's HTTP server."""

        async def metrics(_: web.Request) -> web.Response:
            body = self.exposition.render()
            return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

        app.router.add_get("/metrics", metrics)


def _buyer_chat(update: Update) -> int | None:
    if update.message is not None and update.message.chat.type == "private":
        return update.message.chat.id
    query = update.callback_query
    if query is not None and query.message is not None and query.message.chat.type == "private":
        return query.message.chat.id
    return None


class UpdateMetrics(BaseMiddleware):
    """Outer middleware on ``dispatcher.update``: count each update by type, note buyers waiting."""

    def __init__(self, metrics: BotMetrics) -> None:
        self._metrics = metrics

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if isinstance(event, Update):
            self._metrics.updates.labels(event.event_type).inc()
            chat_id = _buyer_chat(event)
            if chat_id is not None:
                self._metrics.buyer_waiting(chat_id)
        return await handler(event, data)


class ReplyMetrics(BaseRequestMiddleware):
    """Session middleware: every ``send*`` call (not chat actions) counted by method and outcome."""

    def __init__(self, metrics: BotMetrics) -> None:
        self._metrics = metrics

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        name = getattr(method, "__api_method__", "")
        if not name.startswith("send") or name == "sendChatAction":
            return await make_request(bot, method)
        try:
            response = await make_request(bot, method)
        except BaseException:
            self._metrics.replies.labels(name, "error").inc()
            raise
        self._metrics.replies.labels(name, "ok").inc()
        chat_id = getattr(method, "chat_id", None)
        if isinstance(chat_id, int):
            self._metrics.replied(chat_id)
        return response


class Assistant(Protocol):
    async def send(self, sender_id: str, text: str, metadata: Mapping[str, Any]) -> list[BotReply]: ...


class MeteredAssistant:
    """The Rasa client, timed: ``kmbot_rasa_request_seconds{outcome}``."""

    def __init__(self, inner: Assistant, metrics: BotMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def send(self, sender_id: str, text: str, metadata: Mapping[str, Any]) -> list[BotReply]:
        started = time.perf_counter()
        outcome = "error"
        try:
            replies = await self._inner.send(sender_id, text, metadata)
            outcome = "ok"
            return replies
        except Exception as exc:
            outcome = {"RasaUnavailable": "unavailable", "RasaBadResponse": "bad_response"}.get(
                type(exc).__name__, "error"
            )
            raise
        finally:
            self._metrics.rasa.labels(outcome).observe(time.perf_counter() - started)


class MeteredHandoffRepository(HandoffRepository):
    """The handoff repository; each audit entry it writes also moves the handoff counters."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], metrics: BotMetrics) -> None:
        super().__init__(sessions)
        self._metrics = metrics

    async def audit(
        self,
        ticket_id: str,
        action: str,
        *,
        actor_id: int | None = None,
        actor_name: str = "",
        chat_id: int | None = None,
        detail: str = "",
    ) -> None:
        await super().audit(
            ticket_id, action, actor_id=actor_id, actor_name=actor_name, chat_id=chat_id, detail=detail
        )
        self._metrics.handoff_event(action, detail)


class OutboxStatsSource(Protocol):
    """``bot.outbox.Outbox`` as far as metrics read it (``stats()`` is synchronous, no I/O)."""

    def stats(self) -> Any: ...


class OutboxCollector(Collector):
    """Reads the outbox's own counters at scrape time: depth, sends, 429 waits, failures."""

    _COUNTERS = (
        ("sent", "kmbot_outbox_sent", "Bot API writes the outbox delivered"),
        (
            "retry_after_waits",
            "kmbot_outbox_retry_after",
            "429 Too Many Requests answers the outbox waited out",
        ),
        ("retried", "kmbot_outbox_retried", "Writes the outbox retried after a transient error"),
        ("failed", "kmbot_outbox_failed", "Writes the outbox gave up on"),
        (
            "dropped_blocked",
            "kmbot_outbox_dropped_blocked",
            "Writes dropped because the chat blocked the bot",
        ),
    )

    def __init__(self, outbox: OutboxStatsSource) -> None:
        self._outbox = outbox

    def collect(self) -> Iterable[Metric]:
        stats = self._outbox.stats()
        depth = GaugeMetricFamily("kmbot_outbox_pending", "Writes queued or in flight in the outbox")
        depth.add_metric([], float(getattr(stats, "pending", 0)))
        yield depth
        for field, name, help_text in self._COUNTERS:
            value = getattr(stats, field, None)
            if value is not None:
                family = CounterMetricFamily(name, help_text)
                family.add_metric([], float(value))
                yield family


class PendingChats(Protocol):
    async def chats(self) -> list[int]: ...


async def sample_pending(metrics: BotMetrics, pending: PendingChats, interval: float = 5.0) -> None:
    """Forever: how many chats have buyer messages kept for later (the store is async: sampled)."""
    while True:
        try:
            metrics.pending.set(len(await pending.chats()))
        except Exception:
            log.exception("could not sample kept buyer messages")
        await asyncio.sleep(interval)
