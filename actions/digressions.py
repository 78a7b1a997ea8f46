"""Questions a buyer asks in the middle of a form, answered on the spot before the form asks again."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.base import ActionDeps, PlatformAction
from actions.context import language_of
from actions.escalation import ActionBotIdentity, ActionHandoffWait
from actions.info import ActionArrivalTime, ActionMerchantRating, ActionOrderSummary, ActionRefundGuarantee
from actions.texts import message

ANSWERS: dict[str, type[PlatformAction]] = {
    "arrival_time": ActionArrivalTime,
    "refund_guarantee": ActionRefundGuarantee,
    "order_status": ActionOrderSummary,
    "merchant_rating": ActionMerchantRating,
    "bot_identity": ActionBotIdentity,
    "handoff_wait": ActionHandoffWait,
}
SMALL_TALK = {"greet": "digress_greet", "thank": "digress_thank"}


async def answer_digression(
    intent: str, dispatcher: CollectingDispatcher, tracker: Tracker, deps: ActionDeps
) -> None:
    """Answer the question as the action for it would; its slot changes are dropped (the form goes on)."""
    if intent in SMALL_TALK:
        dispatcher.utter_message(text=message(SMALL_TALK[intent], language_of(tracker)))
        return
    action = ANSWERS.get(intent)
    if action is not None:
        domain: dict[str, Any] = {}
        await action(deps).run(dispatcher, tracker, domain)
