"""Base of actions that call the platform: platform failures become polite answers in one place."""

from __future__ import annotations

import logging
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

from integrations.platform.client import PlatformClient
from integrations.platform.errors import NotFound, NotLinked, PlatformError, RateLimited, Unavailable
from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.context import Language, language_of, telegram_user_id
from actions.texts import message

log = logging.getLogger(__name__)

Events = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ActionDeps:
    """Everything actions need, built once by the composition root (``actions/__main__.py``)."""

    platform: PlatformClient
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True, slots=True)
class Turn:
    """The buyer behind the current message, resolved through the platform's Telegram link."""

    language: Language
    telegram_user_id: int | None
    buyer_id: str | None


class BuyerNotLinked(Exception):
    pass


class PlatformAction(Action):  # type: ignore[misc]
    def __init__(self, deps: ActionDeps) -> None:
        self.deps = deps

    @abstractmethod
    def name(self) -> str: ...

    @abstractmethod
    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events: ...

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        language = language_of(tracker)
        user_id = telegram_user_id(tracker)
        try:
            buyer_id = await self.buyer_of(user_id)
            return await self.act(dispatcher, tracker, domain, Turn(language, user_id, buyer_id))
        except (BuyerNotLinked, NotLinked):
            dispatcher.utter_message(text=message("not_linked", language))
        except NotFound:
            order_id = tracker.get_slot("order_id") or ""
            dispatcher.utter_message(text=message("order_not_found", language, order_id=order_id))
            return [SlotSet("order_id", None)]
        except RateLimited:
            dispatcher.utter_message(text=message("platform_busy", language))
        except Unavailable as exc:
            log.warning("%s: platform unavailable: %s", self.name(), exc)
            dispatcher.utter_message(text=message("platform_down", language))
        except PlatformError as exc:
            log.error("%s: platform refused: %s", self.name(), exc)
            dispatcher.utter_message(text=message("platform_down", language))
        return []

    async def buyer_of(self, user_id: int | None) -> str:
        if user_id is None:
            raise BuyerNotLinked
        link = await self.deps.platform.get_link(user_id)
        return link.buyer_id
