"""A conversation as the Rasa server would hand it to the action server, one turn at a time.

``Chat`` keeps the slots and events of one conversation. ``say``/``press`` add a buyer message (with the
Telegram metadata the bot attaches) and the slot candidates that the domain's slot mappings extract from it,
exactly as Rasa appends them before it calls a form's validation action. ``run`` builds a ``rasa_sdk.Tracker``
from that state, runs one real action with a ``CollectingDispatcher`` and applies the returned events, so the
next turn sees what Rasa would. Which action runs when is written out in each test (the policies are Rasa's
business, not the action server's).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from itertools import count
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

Message = dict[str, Any]
Event = dict[str, Any]

BUYER_TG = 10001
"""Telegram user linked to buyer B1001 in the sandbox seeds."""
OTHER_BUYER_TG = 10002
"""Telegram user linked to buyer B1002 (owns KM20261127101 and KM20261127102)."""
UNLINKED_TG = 55555
"""A Telegram user with no platform account."""

_message_ids = count(1)


def slot_event(name: str, value: Any) -> Event:
    return {"event": "slot", "timestamp": None, "name": name, "value": value}


def parse_payload(payload: str) -> tuple[str, list[dict[str, Any]]]:
    """'/inform{"order_id":"KM…"}' → ('inform', [order_id entity]), as Rasa's RegexInterpreter reads it."""
    assert payload.startswith("/"), payload
    name, _, raw = payload[1:].partition("{")
    values = json.loads("{" + raw) if raw else {}
    return name, [{"entity": key, "value": value} for key, value in values.items()]


def slot_candidates(
    domain: dict[str, Any],
    slots: dict[str, Any],
    *,
    text: str,
    intent: str,
    entities: list[dict[str, Any]],
    active_loop: str | None,
) -> dict[str, Any]:
    """What Rasa 3.6's ``action_extract_slots`` takes from one buyer message by the slot mappings of ``domain``:
    per slot the first mapping whose conditions hold and that yields a value (a from_entity mapping yields the
    entity's value, a from_intent mapping its ``value``, from_text the whole text)."""
    found: dict[str, Any] = {}
    requested = slots.get("requested_slot")
    for name, definition in domain["slots"].items():
        for mapping in definition.get("mappings", []):
            conditions = mapping.get("conditions") or []
            if conditions and not any(
                c.get("active_loop") == active_loop
                and ("requested_slot" not in c or c["requested_slot"] == requested)
                for c in conditions
            ):
                continue
            value = _mapped_value(mapping, text=text, intent=intent, entities=entities)
            if value is not None:
                found[name] = value
                break
    return found


def _mapped_value(mapping: dict[str, Any], *, text: str, intent: str, entities: list[dict[str, Any]]) -> Any:
    kind = mapping["type"]
    if kind == "from_entity":
        values = [e["value"] for e in entities if e["entity"] == mapping["entity"]]
        return values[0] if values else None
    if kind == "from_intent":
        intents = mapping["intent"] if isinstance(mapping["intent"], list) else [mapping["intent"]]
        return mapping["value"] if intent in intents else None
    if kind == "from_text":
        return text
    return None  # custom: filled by the actions themselves


@dataclass
class Chat:
    """One buyer's conversation with the assistant."""

    domain: dict[str, Any]
    language: str = "zh"
    telegram_user_id: int | None = BUYER_TG
    slots: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    latest_message: dict[str, Any] = field(default_factory=dict)
    active_loop: str | None = None
    sender_id: str = ""
    returned: list[Event] = field(default_factory=list)
    """The events the last action returned."""
    sent: list[Message] = field(default_factory=list)
    """Every message the bot sent in this conversation."""

    def __post_init__(self) -> None:
        self.sender_id = self.sender_id or f"tg-{self.telegram_user_id}"
        self.slots = dict.fromkeys(self.domain["slots"]) | {"requested_slot": None} | self.slots

    # ------------------------------------------------------------------ the buyer's side

    def say(
        self,
        text: str,
        intent: str = "inform",
        *,
        entities: list[dict[str, Any]] | None = None,
        ranking: list[tuple[str, float]] | None = None,
        confidence: float = 0.93,
    ) -> dict[str, Any]:
        """A buyer message as Rasa parsed it; returns the slot candidates the domain's mappings took from it."""
        entities = [{"start": 0, "end": 0, "extractor": "DIETClassifier", **e} for e in entities or []]
        message_id = next(_message_ids)
        metadata = {
            "telegram_user_id": self.telegram_user_id,
            "chat_id": self.telegram_user_id,
            "language": self.language,
            "message_id": message_id,
            "channel": "telegram",
        }
        ranking = ranking or [(intent, confidence)]
        self.latest_message = {
            "text": text,
            "intent": {"name": intent, "confidence": confidence},
            "entities": entities,
            "intent_ranking": [{"name": name, "confidence": c} for name, c in ranking],
            "metadata": metadata,
            "message_id": str(message_id),
        }
        if self.events:
            self.events.append({"event": "action", "name": "action_listen"})
        self.events.append(
            {
                "event": "user",
                "text": text,
                "parse_data": copy.deepcopy(self.latest_message),
                "metadata": metadata,
                "message_id": str(message_id),
                "input_channel": "telegram",
            }
        )
        candidates = slot_candidates(
            self.domain,
            self.slots,
            text=text,
            intent=intent,
            entities=entities,
            active_loop=self.active_loop,
        )
        for name, value in candidates.items():
            self._apply(slot_event(name, value))
        return candidates

    def press(self, button: dict[str, str], intent: str = "inform") -> dict[str, Any]:
        """Tap a button: '/intent{…}' payloads skip NLU; a plain-text payload reads as the buyer typing it."""
        payload = button["payload"]
        if payload.startswith("/"):
            name, entities = parse_payload(payload)
            return self.say(payload, name, entities=entities, confidence=1.0)
        return self.say(payload, intent)

    def activate(self, form: str) -> None:
        """The form starts: Rasa validates the form's slots that are already filled (prefilled slots)."""
        self.active_loop = form
        for name in self.domain["forms"][form]["required_slots"]:
            if self.slots.get(name) is not None:
                self.events.append(slot_event(name, self.slots[name]))

    # ------------------------------------------------------------------ the assistant's side

    def tracker(self) -> Tracker:
        return Tracker(
            self.sender_id,
            copy.deepcopy(self.slots),
            copy.deepcopy(self.latest_message),
            copy.deepcopy(self.events),
            False,
            None,
            {"name": self.active_loop} if self.active_loop else {},
            "action_listen",
        )

    async def run(self, action: Action) -> list[Message]:
        """Run one action on the current state; returns the messages it sent."""
        dispatcher = CollectingDispatcher()
        returned = await action.run(dispatcher, self.tracker(), self.domain)
        self.returned = returned
        self.events.append({"event": "action", "name": action.name()})
        for event in returned:
            self._apply(event)
        if self.active_loop and action.name() == f"validate_{self.active_loop}":
            self._next_requested_slot()
        self.sent.extend(dispatcher.messages)
        return dispatcher.messages

    def _next_requested_slot(self) -> None:
        """What Rasa's form does after validation: the slot the validator chose to ask next, else the first
        empty one of the domain's required slots; with none left the form ends."""
        if not any(e.get("event") == "slot" and e["name"] == "requested_slot" for e in self.returned):
            required = self.domain["forms"][self.active_loop]["required_slots"]
            missing = [name for name in required if self.slots.get(name) is None]
            self._apply(slot_event("requested_slot", missing[0] if missing else None))
        if self.slots["requested_slot"] is None:
            self.active_loop = None

    def _apply(self, event: Event) -> None:
        self.events.append(event)
        if event.get("event") == "slot":
            self.slots[event["name"]] = event["value"]

    def returned_slots(self) -> dict[str, Any]:
        """The slots the last action set, by name (the last value wins)."""
        return {e["name"]: e["value"] for e in self.returned if e.get("event") == "slot"}


def only(messages: list[Message]) -> Message:
    assert len(messages) == 1, messages
    return messages[0]


def titles(message: Message) -> list[str]:
    return [b["title"] for b in message["buttons"]]


def payloads(message: Message) -> list[str]:
    return [b["payload"] for b in message["buttons"]]


def button(message: Message, title: str) -> dict[str, str]:
    matches = [b for b in message["buttons"] if b["title"] == title]
    assert len(matches) == 1, (title, message["buttons"])
    return matches[0]
