"""The action server's door: only Rasa (holding ACTION_SERVER_TOKEN) may run actions, and only an identity
the bot signed (METADATA_SECRET) is believed.

Rasa sends the token of ``endpoints.yml``'s ``action_endpoint.token`` as ``?token=`` on every call. A request to
``/webhook`` or ``/actions`` without it is refused with 401 before any action runs. ``/health`` stays open.
In the tracker the action server receives, every ``telegram_user_id`` whose signature does not verify
is removed from the metadata, so actions see an unlinked buyer rather than a forged one.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json

from integrations.rasa.identity import DEFAULT_MAX_AGE, IDENTITY_KEY, verify_metadata

log = logging.getLogger(__name__)

PROTECTED_PATHS = frozenset({"/webhook", "/actions"})


def distrust_unsigned(
    action_call: Any, secret: str, *, now: float | None = None, max_age: float = DEFAULT_MAX_AGE
) -> int:
    """Remove every unverified ``telegram_user_id`` from the tracker of an action call (in place); how many."""
    if not isinstance(action_call, dict) or not isinstance(action_call.get("tracker"), dict):
        return 0
    tracker: dict[str, Any] = action_call["tracker"]
    sender = str(tracker.get("sender_id", ""))
    carriers: list[Any] = [tracker.get("latest_message")]
    carriers += [event for event in tracker.get("events") or [] if isinstance(event, dict)]
    removed = 0
    for carrier in carriers:
        if not isinstance(carrier, dict) or not isinstance(carrier.get("metadata"), dict):
            continue
        metadata: dict[str, Any] = carrier["metadata"]
        if "telegram_user_id" not in metadata:
            continue
        if not verify_metadata(secret, sender, metadata, now=now, max_age=max_age):
            del metadata["telegram_user_id"]
            metadata.pop(IDENTITY_KEY, None)
            removed += 1
    return removed


def protect(app: Sanic[Any, Any], token: str | None, metadata_secret: str | None) -> None:
    """Install the checks on the rasa_sdk app; ``None`` leaves that check off (with a warning at start)."""
    if token is None:
        log.warning("ACTION_SERVER_TOKEN is not set: anyone who reaches this port can run actions")
    if metadata_secret is None:
        log.warning("METADATA_SECRET is not set: metadata.telegram_user_id is trusted as sent")

    async def check(request: Request) -> HTTPResponse | None:
        if request.path not in PROTECTED_PATHS:
            return None
        if token is not None and not hmac.compare_digest(
            request.args.get("token", "").encode(), token.encode()
        ):
            log.warning(
                "refused %s %s from %s: missing or wrong token", request.method, request.path, request.ip
            )
            return json({"error": "unauthorized"}, status=401)
        if metadata_secret is not None and request.path == "/webhook":
            try:
                body = request.json
            except Exception:  # rasa_sdk answers malformed bodies itself
                return None
            if removed := distrust_unsigned(body, metadata_secret):
                log.warning("action call for %s: %d unsigned telegram_user_id ignored", request.ip, removed)
        return None

    app.register_middleware(check, "request")
