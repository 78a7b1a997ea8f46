"""Wiring of the bot's observability: ``/metrics`` always, ``/ops`` when ``OPS_TOKEN`` is set."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from aiogram.client.session.base import BaseSession
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import BotSettings
from bot.metrics import BotMetrics, OutboxCollector, OutboxStatsSource, ReplyMetrics
from bot.ops.auth import OpsAuth
from bot.ops.web import OpsPage, ScoreCache, ScoreSource
from integrations.storage.analytics import Analytics

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Observability:
    metrics: BotMetrics
    routes: list[Callable[[web.Application], None]] = field(default_factory=list)

    def watch_session(self, session: BaseSession) -> None:
        """Count replies on the bot's Bot API session (register it innermost: after the outbox)."""
        session.middleware(ReplyMetrics(self.metrics))

    def watch_outbox(self, outbox: OutboxStatsSource) -> None:
        self.metrics.exposition.add_live(OutboxCollector(outbox))


def build_observability(
    settings: BotSettings, metrics: BotMetrics, engine: AsyncEngine, platform: ScoreSource | None
) -> Observability:
    routes: list[Callable[[web.Application], None]] = [metrics.routes]
    if settings.ops_token is None:
        log.info("the /ops page is off: set OPS_TOKEN (16+ characters) to serve it")
    else:
        page = OpsPage(
            OpsAuth(settings.ops_token),
            Analytics(engine),
            ScoreCache(platform) if platform is not None else None,
            timezone=settings.handoff_timezone,
        )
        routes.append(page.register)
    return Observability(metrics, routes)
