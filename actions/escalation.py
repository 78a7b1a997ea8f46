"""Handing over to a human: the platform ticket, and the clarifying question before it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.base import Events, PlatformAction, Turn, done, human_button
from actions.info import context_order
from actions.repair import Turn as ReadTurn
from actions.texts import BUTTONS, INTENT_LABELS, message, minutes
from integrations.platform.errors import PlatformError
from integrations.storage.repositories import Outcome

log = logging.getLogger(__name__)

REASONS = {"complain": "complaint", "human_handoff": "human_request", "nlu_fallback": "not_understood"}
# Cancel reasons that accuse the seller: the ticket goes to platform agents, never to that seller.
MERCHANT_FAULT = frozenset({"merchant_out_of_stock", "merchant_malicious"})
OPEN_TICKET_STATES = ("open", "merchant_notified", "agent_assigned")
SUMMARY_CHARS = 1_500


# Messages the bot could not help with: not understood (low confidence), or understood as unrelated to orders.
# A buyer whose real question keeps landing in either must not be kept going round: the second offers a human.
MISSES = frozenset({"nlu_fallback", "out_of_scope"})


def consecutive_misses(tracker: Tracker) -> int:
    """How many buyer messages in a row, up to the latest, the bot could not help with."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name")
        if intent not in MISSES:
            break
        count += 1
    return count


def conversation_summary(tracker: Tracker, limit: int = 8) -> str:
    """What the buyer asked and what the bot tried, newest last, for the human who takes over."""
    lines: list[str] = []
    for event in tracker.events:
        if event.get("event") == "user":
            intent = ((event.get("parse_data") or {}).get("intent") or {}).get("name") or "?"
            lines.append(f"buyer [{intent}]: {str(event.get('text') or '')[:120]}")
        elif event.get("event") == "action" and str(event.get("name", "")).startswith(("action_", "utter_")):
            name = str(event["name"])
            if name not in ("action_listen", "action_validate_slot_mappings", "action_session_start"):
                lines.append(f"bot: {name}")
    return "\n".join(lines[-limit * 2 :])[-SUMMARY_CHARS:]


def accuses_merchant(tracker: Tracker) -> bool:
    """The buyer says the seller acted in bad faith or had no stock: agents decide, not that seller."""
    return (
        ReadTurn.of(tracker).entities.get("cancel_reason") in MERCHANT_FAULT
        or tracker.get_slot("escalation_reason") == "merchant_fault"
        or tracker.get_slot("cancel_reason") in MERCHANT_FAULT
    )


def escalation_reason(tracker: Tracker) -> str:
    """Why the ticket opens: ``merchant_fault`` (to agents only), a refund that is late, a complaint…"""
    if accuses_merchant(tracker):
        return "merchant_fault"
    slot = tracker.get_slot("escalation_reason")
    if isinstance(slot, str) and slot:
        return slot
    return REASONS.get(latest_intent_name(tracker), "human_request")


def latest_intent_name(tracker: Tracker) -> str:
    return str(((tracker.latest_message or {}).get("intent") or {}).get("name") or "human_handoff")


class ActionEscalate(PlatformAction):
    """Creates the platform ticket (order, buyer, reason, what the bot tried) and says what happens next."""

    def name(self) -> str:
        return "action_escalate"

    async def run_now(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> Events:
        """The ticket, from inside another action (a form the buyer left for a person)."""
        return await self.run(dispatcher, tracker, {})

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        language = turn.language
        buyer_id = await turn.buyer_id()
        order = await context_order(tracker, turn)
        reason = escalation_reason(tracker)
        if consecutive_misses(tracker) >= 2 or (
            reason == "human_request" and self._after_a_miss_answer(tracker)
        ):
            reason = "not_understood"
        try:
            ticket = await self.deps.platform.create_escalation(
                buyer_id=buyer_id,
                reason=reason,
                summary=conversation_summary(tracker),
                order_id=order.order_id if order else None,
                accuses_merchant=reason == "merchant_fault",
                idempotency_key=turn.idempotency_key("escalate"),
            )
        except PlatformError as exc:
            log.error("escalation for %s failed: %s", buyer_id, exc)
            dispatcher.utter_message(text=message("escalation_failed", language))
            return []
        await self._record_cancel_escalation(tracker, turn, buyer_id)
        who = message("who_merchant" if ticket.merchant_id else "who_agent", language)
        # one open ticket per buyer and order: a new request is added to it, and the buyer is told so
        key = "ticket_reused" if ticket.appended else "escalated"
        dispatcher.utter_message(text=message(key, language, ticket=ticket.escalation_id, who=who))
        # a machine-readable note for the bot's handoff relay (it is not shown to the buyer)
        dispatcher.utter_message(
            json_message={"handoff": {"escalation_id": ticket.escalation_id, "order_id": ticket.order_id}}
        )
        return done(
            order.order_id if order else None, "cancel_reason", "cancel_decision", "escalation_reason"
        )

    @staticmethod
    def _after_a_miss_answer(tracker: Tracker) -> bool:
        for event in reversed(tracker.events):
            if event.get("event") == "action" and event.get("name") not in (
                "action_listen",
                "action_validate_slot_mappings",
            ):
                return event.get("name") in ("action_clarify", "action_out_of_scope")
        return False

    async def _record_cancel_escalation(self, tracker: Tracker, turn: Turn, buyer_id: str) -> None:
        """A cancellation that ends with a human is an 'escalated' outcome."""
        order_id, reason = tracker.get_slot("order_id"), tracker.get_slot("cancel_reason")
        if self.deps.outcomes is None or not order_id or not reason:
            return
        try:
            await self.deps.outcomes.record(
                Outcome(turn.conversation_id, order_id, reason, "escalated", "human", buyer_id=buyer_id)
            )
        except Exception:
            log.exception("could not record escalation outcome of %s", order_id)


class ActionClarify(PlatformAction):
    """Low confidence: ask what the buyer meant, with the likeliest intents as buttons; a second miss in a
    row offers a human instead."""

    def name(self) -> str:
        return "action_clarify"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        language = turn.language
        if consecutive_misses(tracker) >= 2:
            dispatcher.utter_message(
                text=message("clarify_again", language),
                buttons=[
                    human_button(language),
                    {"title": BUTTONS["rephrase"][language], "payload": "/deny"},
                ],
            )
            return []
        ranking = (tracker.latest_message or {}).get("intent_ranking") or []
        candidates = [item["name"] for item in ranking if item.get("name") in INTENT_LABELS][:3]
        for fallback in ("order_status", "human_handoff"):
            if fallback not in candidates:
                candidates.append(fallback)
        buttons = [{"title": INTENT_LABELS[name][language], "payload": f"/{name}"} for name in candidates[:4]]
        dispatcher.utter_message(text=message("clarify", language), buttons=buttons)
        return []


class ActionOutOfScope(PlatformAction):
    """A message unrelated to orders: say what the bot can do; a second miss in a row offers a human too."""

    def name(self) -> str:
        return "action_out_of_scope"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        language = turn.language
        buttons = [{"title": INTENT_LABELS["order_status"][language], "payload": "/order_status"}]
        if consecutive_misses(tracker) >= 2:
            buttons.append(human_button(language))
            dispatcher.utter_message(text=message("out_of_scope_again", language), buttons=buttons)
        else:
            dispatcher.utter_message(text=message("out_of_scope", language), buttons=buttons)
        return []


class ActionBotIdentity(PlatformAction):
    """ "你是机器人吗": an honest answer, and the way to a person."""

    def name(self) -> str:
        return "action_bot_identity"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        dispatcher.utter_message(
            text=message("bot_identity", turn.language), buttons=[human_button(turn.language)]
        )
        return []


class ActionHandoffWait(PlatformAction):
    """ "多久有人理我": the buyer's open ticket and its place in the platform's queue, or the offer of one."""

    def name(self) -> str:
        return "action_handoff_wait"

    async def act(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], turn: Turn
    ) -> Events:
        language = turn.language
        buyer_id = await turn.buyer_id()
        mine = [
            t
            for t in await self.deps.platform.list_escalations(buyer_id=buyer_id, limit=20)
            if t.state in OPEN_TICKET_STATES
        ]
        if not mine:
            dispatcher.utter_message(text=message("handoff_none", language), buttons=[human_button(language)])
            return []
        ticket = min(mine, key=lambda t: t.created_at)
        queue = [
            t
            for t in await self.deps.platform.list_escalations("open", limit=200)
            if t.created_at < ticket.created_at
        ]
        waited = max(0, int((datetime.now(UTC) - ticket.created_at).total_seconds() // 60))
        who = message(
            "who_agent" if ticket.state == "agent_assigned" or not ticket.merchant_id else "who_merchant",
            language,
        )
        text = message(
            "handoff_waiting",
            language,
            ticket=ticket.escalation_id,
            state=message(f"ticket_{ticket.state}", language),
            waited=minutes(waited, language),
            ahead=len(queue),
            who=who,
        )
        dispatcher.utter_message(text=text)
        return []
