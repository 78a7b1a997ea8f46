"""Webhook delivery from the outbox: at least once, signed, retried with exponential backoff.

Delivery timing uses the real wall clock (not the sandbox clock): the receiver checks signature timestamps
against its own clock, and retries must happen in real time even while the sandbox clock is frozen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from integrations.platform.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from sandbox.clock import WallClock, utc_now
from sandbox.db import Database
from sandbox.settings import SandboxSettings
from sandbox.tables import Event, WebhookDelivery, WebhookSubscription

logger = logging.getLogger(__name__)

BATCH_SIZE = 50
USER_AGENT = "kameng-sandbox-webhooks/1"


@dataclass(frozen=True, slots=True)
class _Job:
    delivery_id: int
    event_id: str
    url: str
    secret: str
    body: bytes


@dataclass(frozen=True, slots=True)
class _Outcome:
    delivery_id: int
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookDispatcher:
    """Claims due deliveries, POSTs them, and records the outcome; one instance per app."""

    def __init__(
        self,
        db: Database,
        settings: SandboxSettings,
        *,
        wall: WallClock = utc_now,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._db = db
        self._settings = settings
        self._wall = wall
        self._transport = transport
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Deliver soon instead of at the next poll (called after a transaction that emitted events)."""
        self._wake.set()

    def backoff(self, attempts: int) -> timedelta:
        """Delay before the next try after ``attempts`` failures: base·2^(attempts−1), capped."""
        seconds = self._settings.webhook_retry_base_seconds * 2 ** (attempts - 1)
        return timedelta(seconds=min(seconds, self._settings.webhook_retry_max_seconds))

    async def run(self) -> None:
        """Deliver until cancelled."""
        timeout = httpx.Timeout(self._settings.webhook_timeout_seconds)
        async with httpx.AsyncClient(
            timeout=timeout, transport=self._transport, follow_redirects=False
        ) as client:
            while True:
                try:
                    await self.deliver_due(client)
                except Exception:
                    logger.exception("webhook delivery pass failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.webhook_poll_seconds)
                self._wake.clear()

    async def deliver_due(self, client: httpx.AsyncClient) -> int:
        """One pass: returns how many deliveries were attempted."""
        jobs = await self._db.run(self._claim)
        if not jobs:
            return 0
        outcomes = await asyncio.gather(*(self._send(client, job) for job in jobs))
        await self._db.run(lambda session: self._record(session, outcomes))
        return len(jobs)

    async def _claim(self, session: AsyncSession) -> list[_Job]:
        """Lease due deliveries so a crash mid-send only delays them and a second dispatcher skips them."""
        now = self._wall()
        rows = await session.execute(
            select(WebhookDelivery, WebhookSubscription, Event)
            .join(WebhookSubscription, WebhookSubscription.subscription_id == WebhookDelivery.subscription_id)
            .join(Event, Event.event_id == WebhookDelivery.event_id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(BATCH_SIZE)
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        )
        lease = timedelta(seconds=self._settings.webhook_timeout_seconds + 30)
        jobs = []
        for delivery, sub, event in rows:
            delivery.next_attempt_at = now + lease
            jobs.append(_Job(delivery.id, event.event_id, sub.url, sub.secret, event.body.encode()))
        return jobs

    def _allowed(self, url: str) -> bool:
        allowed = self._settings.allowed_webhook_hosts
        return not allowed or (urlsplit(url).hostname or "").lower() in allowed

    async def _send(self, client: httpx.AsyncClient, job: _Job) -> _Outcome:
        if not self._allowed(job.url):
            return _Outcome(job.delivery_id, None, "host not allowed")
        timestamp = int(self._wall().timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            EVENT_ID_HEADER: job.event_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(job.secret, timestamp, job.body),
        }
        try:
            response = await client.post(job.url, content=job.body, headers=headers)
        except httpx.HTTPError as exc:
            return _Outcome(job.delivery_id, None, f"{type(exc).__name__}: {exc}"[:500])
        return _Outcome(job.delivery_id, response.status_code, None)

    async def _record(self, session: AsyncSession, outcomes: list[_Outcome]) -> None:
        now = self._wall()
        for outcome in outcomes:
            delivery = await session.get(WebhookDelivery, outcome.delivery_id, with_for_update=True)
            if delivery is None or delivery.status != "pending":
                continue  # unsubscribed meanwhile
            self._apply(delivery, outcome, now)

    def _apply(self, delivery: WebhookDelivery, outcome: _Outcome, now: datetime) -> None:
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error
        if outcome.ok:
            delivery.status = "delivered"
            delivery.delivered_at = now
        elif delivery.attempts >= self._settings.webhook_max_attempts or outcome.error == "host not allowed":
            delivery.status = "dead"
        else:
            delivery.next_attempt_at = now + self.backoff(delivery.attempts)
