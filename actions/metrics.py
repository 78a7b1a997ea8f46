"""The action server's Prometheus metrics: per-action latency, platform calls, cancellation outcomes.

Hooked at the boundaries: a Sanic request/response middleware times each ``POST /webhook`` by the action
Rasa asked for (names outside the registered actions are labelled ``unknown``), the platform client gets a
metered httpx transport, and the outcomes repository counts what it records. ``GET /metrics`` serves them
(merging every worker's values when ``PROMETHEUS_MULTIPROC_DIR`` is set).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from sanic import Request, Sanic
from sanic.response import BaseHTTPResponse, HTTPResponse, raw
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations.metrics import CONTENT_TYPE, LATENCY_BUCKETS, Exposition, PlatformMetrics
from integrations.platform.models import CANCEL_REASON_TAGS
from integrations.storage.repositories import CancellationOutcomes, Outcome


class ActionMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.exposition = Exposition(self.registry)
        r = self.registry
        self.action = Histogram(
            "kmbot_action_seconds",
            "Custom action run time (the whole /webhook call), by action and HTTP status",
            ["action", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.platform = PlatformMetrics(r)
        self.outcomes = Counter(
            "kmbot_cancellation_outcomes_total",
            "Cancellation requests' outcomes recorded, by outcome and reason tag",
            ["outcome", "reason_tag"],
            registry=r,
        )

    def install(self, app: Sanic[Any, Any], action_names: Iterable[str]) -> None:
        """Time ``/webhook`` per action and serve ``GET /metrics`` on ``app``."""
        known = frozenset(action_names)

        async def started(request: Request) -> None:
            if request.path == "/webhook":
                request.ctx.metrics_started = time.perf_counter()

        async def finished(request: Request, response: BaseHTTPResponse) -> None:
            began = getattr(request.ctx, "metrics_started", None)
            if began is None:
                return
            try:
                name = (request.json or {}).get("next_action")
            except Exception:
                name = None
            label = name if isinstance(name, str) and name in known else "unknown"
            self.action.labels(label, str(response.status)).observe(time.perf_counter() - began)

        async def metrics(_: Request) -> HTTPResponse:
            return raw(self.exposition.render(), content_type=CONTENT_TYPE)

        app.register_middleware(started, "request")
        app.register_middleware(finished, "response")
        app.add_route(metrics, "/metrics", methods=["GET"], name="metrics")


class MeteredOutcomes(CancellationOutcomes):
    """The outcomes repository; each recorded outcome also counts in ``kmbot_cancellation_outcomes_total``."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], metrics: ActionMetrics) -> None:
        super().__init__(sessions)
        self._metrics = metrics

    async def record(self, outcome: Outcome) -> None:
        await super().record(outcome)
        tag = outcome.reason_tag if outcome.reason_tag in CANCEL_REASON_TAGS else "other"
        self._metrics.outcomes.labels(outcome.outcome, tag).inc()
