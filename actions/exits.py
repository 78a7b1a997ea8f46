"""How a flow ends: its slots cleared, or, when the buyer left a form early, what they asked for instead."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import ActionDeps, Events, PlatformAction, done, human_button
from actions.context import language_of, latest_entity, normalise_order_id
from actions.repair import FLOW_TARGETS
from actions.texts import message
from integrations.platform.models import Order

CANCEL_SLOTS = ("cancel_reason", "cancel_decision", "cancel_confirm", "cancel_insisted")
FIX_SLOTS = ("fix_field", "account", "region", "fix_confirm")
REPAIR_SLOTS = ("flow_exit", "repair_unclear", "repair_prompt")
FLOW_SLOTS = (*CANCEL_SLOTS, *FIX_SLOTS, "restore_confirm", "payment_issue", *REPAIR_SLOTS)


async def leave_form(
    flow_exit: str, dispatcher: CollectingDispatcher, tracker: Tracker, deps: ActionDeps
) -> Events:
    """A form ended early (``actions/repair.py``): say so, or hand over to what the buyer asked for instead."""
    language = language_of(tracker)
    order_id = tracker.get_slot("order_id") or tracker.get_slot("current_order_id")
    events = done(order_id, *FLOW_SLOTS)
    if flow_exit in ("handoff", "switch:complain"):
        from actions.escalation import ActionEscalate  # the ticket, now (escalation builds on these helpers)

        if flow_exit == "switch:complain":
            tracker.slots["escalation_reason"] = "complaint"
        escalate = ActionEscalate(deps)
        return events + await escalate.run_now(dispatcher, tracker)
    if flow_exit == "stop":
        key = "flow_stopped_order" if order_id else "flow_stopped"
        dispatcher.utter_message(text=message(key, language, order_id=order_id or ""))
    elif flow_exit == "unclear":
        key = "flow_unclear_order" if order_id else "flow_unclear"
        dispatcher.utter_message(
            text=message(key, language, order_id=order_id or ""), buttons=[human_button(language)]
        )
    elif flow_exit.startswith("switch:"):
        events += switch_to(flow_exit.removeprefix("switch:"), tracker)
    return events


def switch_to(intent: str, tracker: Tracker) -> Events:
    """Start the flow for ``intent`` on this same message (its order id, if it names one, wins)."""
    target = FLOW_TARGETS.get(intent)
    if target is None:
        return []
    events: Events = []
    named = normalise_order_id(latest_entity(tracker, "order_id"))
    if named:
        events += [SlotSet("order_id", named), SlotSet("current_order_id", named)]
    if intent in ("wrong_account", "wrong_region"):
        events.append(SlotSet("fix_field", "account" if intent == "wrong_account" else "region"))
    return [*events, FollowupAction(target)]


class FormSubmitAction(PlatformAction):
    """What a form leads to; a form that ended early (``flow_exit``) is wrapped up here first."""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> Events:
        flow_exit = tracker.get_slot("flow_exit")
        if isinstance(flow_exit, str) and flow_exit:
            return await leave_form(flow_exit, dispatcher, tracker, self.deps)
        return await super().run(dispatcher, tracker, domain)


async def escalate_late_refund(
    deps: ActionDeps, dispatcher: CollectingDispatcher, tracker: Tracker, order: Order
) -> Events:
    """A refund past its due time is a broken promise: a person follows it up now (the answer said so)."""
    from actions.escalation import ActionEscalate  # escalation builds on these helpers

    tracker.slots.update({"escalation_reason": "refund_late", "current_order_id": order.order_id})
    return await ActionEscalate(deps).run_now(dispatcher, tracker)
