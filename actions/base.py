"""Base of actions that call the platform: platform failures become polite answers in one place."""

from __future__ import annotations

import hashlib
import logging
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.context import Language, language_of, telegram_user_id
from actions.texts import BUTTONS, message
from integrations.platform.client import PlatformClient
from integrations.platform.errors import NotFound, NotLinked, PlatformError, RateLimited, Unavailable
from integrations.platform.models import Order
from integrations.storage.repositories import CancellationOutcomes

log = logging.getLogger(__name__)

Events = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ActionDeps:
    """Everything actions need, built once by the composition root (``actions/__main__.py``)."""

    platform: PlatformClient
    outcomes: CancellationOutcomes | None = None
    timezone: str = "Asia/Shanghai"


class BuyerNotLinked(Exception):
    """The Telegram user has not linked a platform account."""


@dataclass(slots=True)
class Turn:
    """The current buyer message: its language, and the buyer behind it (resolved on first use)."""

    language: Language
    telegram_user_id: int | None
    conversation_id: str
    platform: PlatformClient
    message_key: str = ""
    _buyer_id: str | None = field(default=None, repr=False)

    async def buyer_id(self) -> str:
        """The platform buyer linked to this Telegram user; raises BuyerNotLinked."""
        if self._buyer_id is None:
            if self.telegram_user_id is None:
                raise BuyerNotLinked
            self._buyer_id = (await self.platform.get_link(self.telegram_user_id)).buyer_id
        return self._buyer_id

    async def order(self, order_id: str) -> Order:
        """One of this buyer's orders (the platform refuses another buyer's with 404)."""
        return await self.platform.get_order(await self.buyer_id(), order_id)

    def idempotency_key(self, *parts: object) -> str:
        """One key per buyer action: the same action retried has one effect; a later action (cancel, restore,
        cancel again) is a new one. The buyer message that confirmed the action identifies it."""
        raw = "|".join([self.conversation_id, self.message_key, *map(str, parts)])
        return hashlib.sha256(raw.encode()).hexdigest()[:40]


def reset(*slots: str) -> Events:
    return [SlotSet(slot, None) for slot in slots]


def done(order_id: str | None, *slots: str) -> Events:
    """End of a flow: its slots cleared, the order kept as the conversation's context."""
    events = reset("order_id", "order_problem", *slots)
    if order_id:
        events.append(SlotSet("current_order_id", order_id))
    return events


def human_button(language: Language) -> dict[str, str]:
    return {"title": BUTTONS["human"][language], "payload": "/human_handoff"}


def latest_message_key(tracker: Tracker) -> str:
    """Identifies the latest buyer message (Rasa's id for it; its time when there is none)."""
    latest = tracker.latest_message or {}
    if latest.get("message_id"):
        return str(latest["message_id"])
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return str(event.get("message_id") or event.get("timestamp"))
    return "none"


def make_turn(tracker: Tracker, platform: PlatformClient) -> Turn:
    return Turn(
        language_of(tracker),
        telegram_user_id(tracker),
        tracker.sender_id,
        platform,
        latest_message_key(tracker),
    )


class PlatformAction(Action):  # type: ignore[misc]
    """An action that may call the platform. ``act`` does the work; failures are answered here."""

    def __init__(self, deps: ActionDeps) -> None:
        self.deps = deps

    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events: ...

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        turn = make_turn(tracker, self.deps.platform)
        try:
            return await self.act(dispatcher, tracker, domain, turn)
        except (BuyerNotLinked, NotLinked):
            dispatcher.utter_message(text=message("not_linked", turn.language))
        except NotFound:
            order_id = tracker.get_slot("order_id") or tracker.get_slot("current_order_id") or ""
            dispatcher.utter_message(text=message("order_not_found", turn.language, order_id=order_id))
            return [SlotSet("order_id", None)]
        except RateLimited:
            dispatcher.utter_message(text=message("platform_busy", turn.language))
        except Unavailable as exc:
            log.warning("%s: platform unavailable: %s", self.name(), exc)
            dispatcher.utter_message(
                text=message("platform_down", turn.language), buttons=[human_button(turn.language)]
            )
        except PlatformError as exc:
            log.error("%s: platform refused: %s", self.name(), exc)
            dispatcher.utter_message(
                text=message("platform_down", turn.language), buttons=[human_button(turn.language)]
            )
        return []


class AskAction(PlatformAction):
    """A form's question. After a repair (``repair_prompt``) it says why it asks again, or gives way to a
    question the validator already asked (a suggested order id, "cancel the order, or stop?")."""

    @abstractmethod
    async def ask(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events: ...

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        prompt = tracker.get_slot("repair_prompt")
        cleared: Events = [SlotSet("repair_prompt", None)] if prompt else []
        if prompt == "suggested":
            return cleared  # the validator asked "did you mean KM…?" with buttons
        if prompt == "cancel_or_stop":
            order_id = tracker.get_slot("order_id") or tracker.get_slot("current_order_id") or ""
            dispatcher.utter_message(
                text=message("cancel_or_stop", turn.language, order_id=order_id),
                buttons=[
                    {"title": BUTTONS["cancel_order"][turn.language], "payload": "/cancel_order"},
                    {"title": BUTTONS["stop_here"][turn.language], "payload": "/stop"},
                ],
            )
            return cleared
        if prompt == "unclear":
            dispatcher.utter_message(text=message("repair_unclear", turn.language))
        elif prompt == "reason_unclear":
            dispatcher.utter_message(text=message("reason_unclear", turn.language))
        return cleared + await self.ask(dispatcher, tracker, domain, turn)
