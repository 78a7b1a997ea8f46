"""Conversation repair inside forms: what a buyer's message means in the light of the question asked.

A form asks one thing at a time. Buyers answer it, or they do something else: stop ("算了不改了"), ask for a
person, ask another question in the middle ("还要多久啊"), start another flow ("我要取消订单 KM…"), correct the
order ("不是这个，是KM…"), or write something we cannot place. Rasa's slot mappings only know "fill the slot
from this message"; :func:`read_turn` decides first, from the NLU's intent and entities and the slot being
asked, whether the message is an answer at all. The form validators (``actions/forms.py``) act on the
verdict: an answer goes through the slot's validation, anything else ends the form cleanly (``flow_exit``, read
by the form's submit action), is answered and the question asked again, or gets one clarifying question.
Nothing here looks at words: the NLU reads the message, this module reads the situation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rasa_sdk import Tracker

# Answers that are yes/no or a choice between buttons: an unplaceable message is asked again, never guessed.
CHOICE_SLOTS = frozenset({"cancel_decision", "cancel_confirm", "fix_field", "fix_confirm", "restore_confirm"})
# Free text that is a value unless the NLU clearly reads something else into it.
TEXT_SLOTS = frozenset({"account", "region", "cancel_reason", "payment_issue"})

# Intents that start a flow of their own, and the form (or action) that serves them.
FLOW_TARGETS: dict[str, str] = {
    "cancel_order": "cancel_form",
    "wrong_account": "fix_target_form",
    "wrong_region": "fix_target_form",
    "restore_order": "restore_form",
    "request_refund": "refund_form",
    "payment_problem": "payment_form",
    "complain": "action_escalate",
}
# Questions answered on the spot, after which the form asks its question again.
DIGRESSIONS = frozenset(
    {
        "arrival_time",
        "refund_guarantee",
        "order_status",
        "merchant_rating",
        "bot_identity",
        "handoff_wait",
        "greet",
        "thank",
    }
)
MISSES = frozenset({"out_of_scope", "nlu_fallback"})
# The form each request starts: the same request again inside that form ("/orders" while it lists the orders)
# is the question asked again, not a message we failed to understand.
FORM_OF_INTENT: dict[str, str] = {
    **FLOW_TARGETS,
    "order_status": "order_status_form",
    "merchant_rating": "merchant_rating_form",
}
# Something typed like an order number, perhaps mistyped (l/O for 1/0, spaces): the validator matches it.
ID_LIKE = re.compile(r"[kK][mM][\s\-#]*[0-9OoIlL\s\-]{8,18}|\b[0-9OoIlL]{10,15}\b")
# Below this the intent is a guess: free text (an account, a region, a reason) is then taken as the answer.
CONFIDENT = 0.6
# A reason this probable outweighs a "stop" reading ("不需要了" 0.98) where a bare "算了" / "never mind" gets a
# weak guess (0.39-0.48 with the model of 2026-12-03): only then is an answer to "why?" not a way out.
STRONG_REASON = 0.6
# A step that cancels (the read-back's yes, a second "cancel" that skips it) needs an intent read this clearly:
# "还是不取消了…" came out cancel_order 0.62 / keep_order 0.37, and must not cancel anything.
DECISIVE = 0.8


class Verdict(StrEnum):
    VALUE = "value"  # an answer to the question: the slot's own validation takes it
    STOP = "stop"  # end the form, change nothing
    KEEP = "keep"  # (cancellation) keep the order
    HANDOFF = "handoff"  # a person, now
    SWITCH = "switch"  # another flow: end this form, start that one
    ASK_CANCEL_OR_STOP = "ask_cancel_or_stop"  # a bare "取消" inside another flow: cancel the order, or stop?
    DIGRESS = "digress"  # another question: answer it, then ask again
    REPEAT = "repeat"  # the form's own request again, without an answer: ask the question again, plainly
    UNCLEAR = "unclear"  # cannot be placed: one clarifying question, then a non-destructive end


@dataclass(frozen=True, slots=True)
class Reading:
    verdict: Verdict
    intent: str
    target: str | None = None  # the form or action for SWITCH


@dataclass(frozen=True, slots=True)
class Turn:
    """What the NLU made of the latest message."""

    intent: str
    confidence: float
    entities: dict[str, str]
    text: str
    reason_confidence: float = 0.0  # the reason classifier's probability for entities["cancel_reason"]

    @classmethod
    def of(cls, tracker: Tracker) -> Turn:
        latest: dict[str, Any] = tracker.latest_message or {}
        intent = latest.get("intent") or {}
        entities: dict[str, str] = {}
        for item in latest.get("entities") or []:
            name, value = item.get("entity"), item.get("value")
            if isinstance(name, str) and isinstance(value, str) and name not in entities:
                entities[name] = value
        # the reason classifier's reading (nlu/kmbot_nlu/reasons.py); a button's reason entity wins
        reason = latest.get("cancel_reason")
        reason_confidence = 1.0 if "cancel_reason" in entities else 0.0
        if (
            "cancel_reason" not in entities
            and isinstance(reason, dict)
            and isinstance(reason.get("value"), str)
        ):
            entities["cancel_reason"] = reason["value"]
            reason_confidence = float(reason.get("confidence") or 0.0)
        return cls(
            intent=str(intent.get("name") or "nlu_fallback"),
            confidence=float(intent.get("confidence") or 0.0),
            entities=entities,
            text=str(latest.get("text") or ""),
            reason_confidence=reason_confidence,
        )

    @property
    def is_payload(self) -> bool:
        """A button press (Rasa parses ``/intent{...}`` itself, with confidence 1)."""
        return self.text.startswith("/")

    @property
    def confident(self) -> bool:
        return self.confidence >= CONFIDENT

    @property
    def decisive(self) -> bool:
        """Clear enough to cancel on: a button, or an intent the NLU is sure of."""
        return self.is_payload or self.confidence >= DECISIVE

    @property
    def refers_to_an_order(self) -> bool:
        return "order_id" in self.entities or "order_ref" in self.entities

    @property
    def asks_in_general(self) -> bool:
        """About a kind of product, a carrier or a time of day, and not about an order."""
        general = any(name in self.entities for name in ("product_kind", "carrier", "time_of_day"))
        return general and not self.refers_to_an_order

    @property
    def is_short(self) -> bool:
        """A message of a word or two: "取消", "cancel", "退出"."""
        stripped = self.text.strip()
        return len(stripped.split()) <= 2 and len(stripped) <= 12


def read_turn(form: str, slot: str, turn: Turn, form_order: str | None) -> Reading:
    """What the latest message means while ``form`` asks for ``slot`` (about ``form_order``, if known)."""
    intent = turn.intent
    if intent == "human_handoff":
        return Reading(Verdict.HANDOFF, intent)
    if slot == "cancel_reason" and turn.reason_confidence >= STRONG_REASON and intent != "keep_order":
        return Reading(Verdict.VALUE, intent)  # "不需要了" answering "why?" is the reason, not a stop
    if slot == "order_id" and "order_id" in turn.entities and FLOW_TARGETS.get(intent, form) == form:
        return Reading(Verdict.VALUE, intent)  # "KM…～" read as goodbye is still the order asked for
    if intent in ("stop", "goodbye"):
        keeps = (
            form == "cancel_form" and slot != "order_id"
        )  # before an order is chosen there is none to keep
        return Reading(Verdict.KEEP if keeps else Verdict.STOP, intent)
    if intent == "keep_order":
        if form == "cancel_form" or slot == "restore_confirm":
            return Reading(Verdict.VALUE, intent)
        return Reading(Verdict.STOP, intent)
    other_flow = FLOW_TARGETS.get(intent, form) != form
    if "order_id" in turn.entities and turn.entities["order_id"] != form_order and not other_flow:
        return Reading(Verdict.VALUE, intent)  # "不是这个，是KM…": the form goes on about the other order
    if slot == "order_id":
        return _read_order_answer(form, turn)
    if form == "cancel_form":
        return _read_cancel_answer(slot, turn)
    return _read_other_answer(form, slot, turn)


def _read_order_answer(form: str, turn: Turn) -> Reading:
    intent = turn.intent
    if "order_id" in turn.entities and FLOW_TARGETS.get(intent, form) == form:
        return Reading(Verdict.VALUE, intent)
    target = FLOW_TARGETS.get(intent)
    if target is not None and target != form:
        return Reading(Verdict.SWITCH, intent, target)
    if FORM_OF_INTENT.get(intent) == form and not ID_LIKE.search(turn.text):
        return Reading(Verdict.REPEAT, intent)  # "我的订单呢" / "/orders" while the form lists the orders
    if intent in DIGRESSIONS - {"order_status", "merchant_rating", "arrival_time", "refund_guarantee"}:
        return Reading(Verdict.DIGRESS, intent)
    if intent in ("arrival_time", "refund_guarantee") and not turn.refers_to_an_order:
        return Reading(Verdict.DIGRESS, intent)  # a general question, answered without an order
    return Reading(Verdict.UNCLEAR, intent)  # no order id in it: the validator looks for a mistyped one


def _read_cancel_answer(slot: str, turn: Turn) -> Reading:
    intent = turn.intent
    if slot == "cancel_reason":
        if "cancel_reason" in turn.entities:
            return Reading(Verdict.VALUE, intent)
        if intent in ("greet", "thank", "bot_identity", "handoff_wait") and turn.confident:
            return Reading(Verdict.DIGRESS, intent)
        if intent in ("arrival_time", "refund_guarantee") and turn.confident and turn.asks_in_general:
            return Reading(Verdict.DIGRESS, intent)  # "电信话费晚上要多久": a question, not the reason
        if intent in ("affirm", "deny"):
            # "ok" (the reason is still to come), "不方便说" or "不是这个区的": ask once more, with the reasons
            # as buttons and "other" among them; a second such answer records `other` (give_up)
            return Reading(Verdict.UNCLEAR, intent)
        return Reading(Verdict.VALUE, intent)  # whatever else it says is why
    if slot == "cancel_decision":
        if intent in (
            "cancel_order",
            "request_refund",
            "affirm",
            "deny",
            "thank",
            "wrong_account",
            "wrong_region",
        ):
            return Reading(Verdict.VALUE, intent)
        if "account" in turn.entities or "region" in turn.entities:
            return Reading(Verdict.VALUE, intent)
        if intent == "complain":
            return Reading(Verdict.SWITCH, intent, "action_escalate")
        if intent in DIGRESSIONS:
            return Reading(Verdict.DIGRESS, intent)
        return Reading(Verdict.UNCLEAR, intent)
    # cancel_confirm: the read-back
    if intent == "deny" or (intent in ("cancel_order", "request_refund", "affirm") and turn.decisive):
        return Reading(Verdict.VALUE, intent)
    if intent in ("cancel_order", "request_refund", "affirm"):
        return Reading(
            Verdict.UNCLEAR, intent
        )  # a hesitant yes is asked once more, then nothing is cancelled
    if intent in DIGRESSIONS:
        return Reading(Verdict.DIGRESS, intent)
    return Reading(Verdict.UNCLEAR, intent)


def _read_other_answer(form: str, slot: str, turn: Turn) -> Reading:
    intent = turn.intent
    if _is_value(form, slot, turn):
        return Reading(Verdict.VALUE, intent)
    if intent == "deny" and slot in ("account", "region") and turn.confident:
        return Reading(Verdict.STOP, intent)  # "no, leave it" to "send the correct number": nothing to change
    target = FLOW_TARGETS.get(intent)
    if intent == "cancel_order" and turn.is_short and not turn.refers_to_an_order:
        return Reading(Verdict.ASK_CANCEL_OR_STOP, intent)
    if target is not None and target != form:
        return Reading(Verdict.SWITCH, intent, target)
    if intent in DIGRESSIONS:
        return Reading(Verdict.DIGRESS, intent)
    if slot in TEXT_SLOTS and (intent in MISSES or not turn.confident):
        return Reading(Verdict.VALUE, intent)  # free text the NLU cannot place: the validator judges it
    return Reading(Verdict.UNCLEAR, intent)


def _is_value(form: str, slot: str, turn: Turn) -> bool:
    """Whether the message answers the slot by its intent or entities."""
    intent, entities = turn.intent, turn.entities
    if slot == "fix_field":
        return intent in ("wrong_account", "wrong_region") or "account" in entities or "region" in entities
    if slot == "account":
        return "account" in entities or intent in ("inform", "wrong_account")
    if slot == "region":
        return "region" in entities or intent in ("inform", "wrong_region")
    if slot == "fix_confirm":
        return intent in ("affirm", "deny") or "account" in entities or "region" in entities
    if slot == "restore_confirm":
        return intent in ("affirm", "deny", "restore_order", "cancel_order")
    if slot == "payment_issue":
        return intent in ("payment_problem", "inform") or turn.is_payload
    return intent == "inform"
