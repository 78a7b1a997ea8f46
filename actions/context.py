"""What an action needs to know about the conversation: language, Telegram user, the buyer behind it."""

from __future__ import annotations

import re
from typing import Any, Literal

from rasa_sdk import Tracker

Language = Literal["zh", "en"]


def message_metadata(tracker: Tracker) -> dict[str, Any]:
    """Metadata the bot attached to the latest buyer message (Telegram ids, language)."""
    metadata = (tracker.latest_message or {}).get("metadata")
    if not metadata:
        for event in reversed(tracker.events):
            if event.get("event") == "user":
                metadata = event.get("metadata")
                break
    return metadata if isinstance(metadata, dict) else {}


def language_of(tracker: Tracker) -> Language:
    slot = tracker.get_slot("language")
    if slot in ("zh", "en"):
        return "zh" if slot == "zh" else "en"
    return "en" if message_metadata(tracker).get("language") == "en" else "zh"


def telegram_user_id(tracker: Tracker) -> int | None:
    value = message_metadata(tracker).get("telegram_user_id")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def latest_entity(tracker: Tracker, entity: str) -> str | None:
    """The first value of ``entity`` in the latest buyer message."""
    for item in (tracker.latest_message or {}).get("entities") or []:
        if item.get("entity") == entity and isinstance(item.get("value"), str):
            return str(item["value"])
    return None


ORDER_ID = re.compile(r"^KM\d{11,14}$")


def normalise_order_id(value: object) -> str | None:
    """'km 2026 1127 001' → 'KM20261127001'; None when it cannot be an order number."""
    if not isinstance(value, str):
        return None
    candidate = re.sub(r"[\s\-_#]", "", value).upper()
    return candidate if ORDER_ID.match(candidate) else None
