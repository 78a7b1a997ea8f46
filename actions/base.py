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
        """The same buyer request, retried or redelivered, must have one effect on the platform."""
        raw = "|".join([self.conversation_id, *map(str, parts)])
        return hashlib.sha256(raw.encode()).hexdigest()[:40]


def human_button(language: Language) -> dict[str, str]:
    return {"title": BUTTONS["human"][language], "payload": "/human_handoff"}


def make_turn(tracker: Tracker, platform: PlatformClient) -> Turn:
    return Turn(language_of(tracker), telegram_user_id(tracker), tracker.sender_id, platform)


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
