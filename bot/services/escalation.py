"""Opening a platform ticket for a buyer from the bot itself (when the assistant cannot do it)."""

from __future__ import annotations

import logging

from integrations.platform.client import PlatformClient
from integrations.platform.errors import PlatformError

log = logging.getLogger(__name__)


class PlatformEscalator:
    def __init__(self, platform: PlatformClient) -> None:
        self._platform = platform

    async def escalate(self, user_id: int, reason: str, summary: str) -> str | None:
        try:
            link = await self._platform.get_link(user_id)
            ticket = await self._platform.create_escalation(link.buyer_id, reason, summary[-1500:] or "-")
        except PlatformError as exc:
            log.warning("could not open a ticket for telegram user %s: %s", user_id, exc)
            return None
        return ticket.escalation_id
