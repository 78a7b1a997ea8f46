"""Linking a Telegram user to a platform buyer with the one-time deep-link token (``/start <token>``)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from integrations.platform.client import PlatformClient
from integrations.platform.errors import InvalidToken, PlatformError

log = logging.getLogger(__name__)
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")  # Telegram allows A-Z a-z 0-9 _ - in start parameters


@dataclass(frozen=True, slots=True)
class BindingResult:
    ok: bool
    code: str  # linked | token_unknown | token_expired | token_used | invalid | unavailable
    buyer_id: str | None = None


class BindingService:
    def __init__(self, platform: PlatformClient) -> None:
        self._platform = platform

    async def redeem(self, token: str, telegram_user_id: int) -> BindingResult:
        if not TOKEN_SHAPE.match(token):
            return BindingResult(False, "invalid")
        try:
            link = await self._platform.redeem_link_token(token, telegram_user_id)
        except InvalidToken as exc:
            return BindingResult(False, exc.code)
        except PlatformError as exc:
            log.warning("binding for telegram user %s failed: %s", telegram_user_id, exc)
            return BindingResult(False, "unavailable")
        return BindingResult(True, "linked", link.buyer_id)
