"""The conversation log keeps ``CONVERSATION_RETENTION_DAYS``; older messages are purged periodically."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Protocol

log = logging.getLogger(__name__)


class Purgeable(Protocol):
    async def purge_before(self, cutoff: datetime, batch: int = 5_000) -> int: ...


async def purge_once(conversation_log: Purgeable, days: int, now: datetime | None = None) -> int:
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    removed = await conversation_log.purge_before(cutoff)
    if removed:
        log.info("retention: purged %d conversation messages older than %d days", removed, days)
    return removed


async def purge_forever(conversation_log: Purgeable, days: int, interval: float = 3600.0) -> None:
    """Purge now, then every ``interval`` seconds; a failure is logged and retried at the next round."""
    while True:
        try:
            await purge_once(conversation_log, days)
        except Exception:
            log.exception("retention: purging the conversation log failed")
        await asyncio.sleep(interval)
