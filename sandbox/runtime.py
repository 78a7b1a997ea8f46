"""Everything one running sandbox owns: settings, database, clock, background workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from sandbox.clock import Clock, utc_now
from sandbox.db import Database
from sandbox.dispatcher import WebhookDispatcher
from sandbox.idempotency import fingerprint, purge_expired, run_idempotent
from sandbox.migrate import upgrade_to_head
from sandbox.ratelimit import RateLimiter
from sandbox.services import admin, seed
from sandbox.services.simulation import StepResult, run_step
from sandbox.settings import SandboxSettings

logger = logging.getLogger(__name__)

Work = Callable[[AsyncSession], Awaitable[tuple[int, Any]]]


@dataclass
class Runtime:
    settings: SandboxSettings
    db: Database
    clock: Clock
    limiter: RateLimiter
    dispatcher: WebhookDispatcher
    _step_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, settings: SandboxSettings) -> Runtime:
        db = Database(settings.database_url)
        return cls(
            settings=settings,
            db=db,
            clock=Clock(speed=settings.clock_speed),
            limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
            dispatcher=WebhookDispatcher(db, settings),
        )

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Migrate, seed, then start the background workers."""
        self.db.prepare()
        await upgrade_to_head(self.db.engine)
        if self.settings.seed:
            await self.db.run(lambda s: seed.seed(s, self.now(), self.restore_window))
        if self.settings.webhook_delivery:
            self._tasks.append(asyncio.create_task(self.dispatcher.run(), name="sandbox-webhooks"))
        if self.settings.simulate:
            self._tasks.append(asyncio.create_task(self._simulate_forever(), name="sandbox-simulation"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.db.dispose()

    async def healthy(self) -> bool:
        try:
            async with self.db.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            logger.warning("database health check failed", exc_info=True)
            return False
        return True

    # ------------------------------------------------------------ time and simulation

    def now(self) -> datetime:
        return self.clock.now()

    @property
    def restore_window(self) -> timedelta:
        return timedelta(minutes=self.settings.restore_window_minutes)

    async def tick(self) -> tuple[datetime, StepResult]:
        """One simulation step at the current sandbox time; steps never overlap."""
        async with self._step_lock:
            now = self.now()
            result = await self.db.run(lambda s: run_step(s, now))
            await self.db.run(lambda s: purge_expired(s, utc_now()))
        if result.events:
            self.dispatcher.wake()
        return now, result

    async def _simulate_forever(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                logger.exception("simulation step failed")
            await asyncio.sleep(self.settings.simulate_interval_seconds)

    async def reset(self, now: datetime | None) -> datetime:
        """Wipe all data, set the clock (real time unless ``now``), and seed again."""
        async with self._step_lock:
            if now is None:
                self.clock.reset()
            else:
                self.clock.set(now, frozen=True)
            seeded_at = self.now()

            async def work(session: AsyncSession) -> None:
                await admin.wipe(session)
                await seed.seed(session, seeded_at, self.restore_window)

            await self.db.run(work)
        return seeded_at

    # ------------------------------------------------------------ request helpers

    async def idempotent(
        self, request: Request, key: str | None, payload: BaseModel | None, work: Work
    ) -> Response:
        """Run a state-changing operation under the request's Idempotency-Key and wake the dispatcher."""
        body = None if payload is None else payload.model_dump(mode="json")
        request_fingerprint = fingerprint(request.method, request.url.path, body)
        outcome = await run_idempotent(self.db, key, request_fingerprint, work, utc_now())
        self.dispatcher.wake()
        return outcome.response()
