"""Opening a platform ticket for a buyer from the bot itself (when the assistant cannot do it)."""

from __future__ import annotations

import logging
import re

from integrations.platform.client import PlatformClient
from integrations.platform.errors import NotAllowed, NotFound, PlatformError

log = logging.getLogger(__name__)

ORDER_ID = re.compile(r"(?<![A-Za-z0-9])KM\d{11,14}(?!\d)", re.IGNORECASE)
"""The platform's order id format (``actions.order_status.ORDER_ID``): an id the buyer pasted, not a meaning."""


def mentioned_order(summary: str) -> str | None:
    """The last order id the waiting messages mention, so the ticket reaches that order's merchant first."""
    found = ORDER_ID.findall(summary)
    return found[-1].upper() if found else None


class PlatformEscalator:
    def __init__(self, platform: PlatformClient) -> None:
        self._platform = platform

    async def escalate(self, user_id: int, reason: str, summary: str) -> str | None:
        summary = summary[-1500:] or "-"
        try:
            link = await self._platform.get_link(user_id)
            order_id = mentioned_order(summary)
            if order_id is not None:
                try:
                    ticket = await self._platform.create_escalation(
                        link.buyer_id, reason, summary, order_id=order_id
                    )
                    return ticket.escalation_id
                except (NotFound, NotAllowed) as exc:  # not this buyer's order: a ticket without one
                    log.info("order %s not attached to the ticket of user %s: %s", order_id, user_id, exc)
            ticket = await self._platform.create_escalation(link.buyer_id, reason, summary)
        except PlatformError as exc:
            log.warning("could not open a ticket for telegram user %s: %s", user_id, exc)
            return None
        return ticket.escalation_id
