"""Prometheus plumbing shared by the bot and the action server (``prometheus-client``).

Each process builds one :class:`~prometheus_client.CollectorRegistry` in its composition root and hands it
to its metric sets (``bot/metrics.py``, ``actions/metrics.py``); nothing is registered at import time.
Labels stay low-cardinality: operations are route templates (ids become ``{id}``), outcomes are classes.

Multi-process: when ``PROMETHEUS_MULTIPROC_DIR`` is set (a process run with several workers), values live
in that directory's memory-mapped files and :func:`exposition` merges every worker's with
``MultiProcessCollector``; collectors that read live objects (registered with ``live=True``) are added
from the serving process only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# seconds: sub-100 ms for local calls up to the 30 s Rasa timeout
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# collection names of the platform API: the segment after one of them is an identifier
_COLLECTIONS = frozenset(
    {"buyers", "orders", "merchants", "escalations", "telegram-links", "webhook-subscriptions", "refunds"}
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


class Exposition:
    """What ``/metrics`` serves: the process registry, or every worker's values in multi-process mode."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._live = CollectorRegistry(auto_describe=True)

    def add_live(self, collector: Collector) -> None:
        """A collector reading this process's objects at scrape time (queue depth, counters of a class)."""
        if multiprocess_dir() is None:
            self.registry.register(collector)
        else:
            self._live.register(collector)

    def render(self) -> bytes:
        if multiprocess_dir() is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged) + generate_latest(self._live)


def operation_of(method: str, path: str) -> str:
    """``GET /v1/buyers/B1/orders/O-9`` → ``GET /v1/buyers/{id}/orders/{id}`` (a bounded label)."""
    segments = [s for s in path.split("?", 1)[0].split("/") if s]
    if not segments or segments[0] not in ("v1", "health"):
        return f"{method} other"
    shaped: list[str] = []
    after_collection = False
    for segment in segments:
        if after_collection:
            shaped.append("{id}")
            after_collection = False
        else:
            shaped.append(segment if len(segment) <= 32 else "{long}")
            after_collection = segment in _COLLECTIONS
    return f"{method} /" + "/".join(shaped)


def outcome_of(status: int | None) -> str:
    """HTTP status → ``2xx``/``4xx``/``429``/``5xx``; None (no answer) → ``error``."""
    if status is None:
        return "error"
    if status == 429:
        return "429"
    return f"{status // 100}xx"


class PlatformMetrics:
    """Calls to the platform API by operation and outcome, with their latency."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "kmbot_platform_requests_total",
            "Platform API calls by operation (route template) and outcome (status class or error)",
            ["operation", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "kmbot_platform_request_seconds",
            "Platform API call latency by operation",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(self, operation: str, status: int | None, seconds: float) -> None:
        self.calls.labels(operation, outcome_of(status)).inc()
        self.latency.labels(operation).observe(seconds)


class MeteredTransport(httpx.AsyncBaseTransport):
    """An httpx transport that counts and times every request it carries (each retry is one call)."""

    def __init__(self, metrics: PlatformMetrics, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._metrics = metrics
        self._inner = inner or httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        operation = operation_of(request.method, request.url.path)
        started = time.perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
        except Exception:
            self._metrics.observe(operation, None, time.perf_counter() - started)
            raise
        self._metrics.observe(operation, response.status_code, time.perf_counter() - started)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def sample_names(text: str) -> Iterable[str]:
    """Metric sample names in an exposition (for tests and the demo's self-check)."""
    for line in text.splitlines():
        if line and not line.startswith("#"):
            yield line.split("{", 1)[0].split(" ", 1)[0]
