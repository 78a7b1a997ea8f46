"""Slot extraction and validation that runs on every buyer turn and inside forms."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker, ValidationAction
from rasa_sdk.executor import CollectingDispatcher

from actions.context import message_metadata, normalise_order_id


class ValidateSlotMappings(ValidationAction):  # type: ignore[misc]
    """``action_validate_slot_mappings``: the buyer's language from the Telegram metadata."""

    def name(self) -> str:
        return "action_validate_slot_mappings"

    async def extract_language(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        language = message_metadata(tracker).get("language")
        if language in ("zh", "en") and language != tracker.get_slot("language"):
            return {"language": language}
        return {}

    async def validate_order_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        return {"order_id": normalise_order_id(value)}
