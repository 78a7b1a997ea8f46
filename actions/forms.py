"""Form validation: which order a form is about (and whether it qualifies), and each answer the buyer gives.

Every turn inside a form is first read in the light of the question asked (``actions/repair.py``): only an
answer reaches the slot's own validation. A stop, a request for a person or another flow ends the form through
``flow_exit`` (its submit action says what happens next); a question in between is answered and the form asks
again; what cannot be placed gets one clarifying question and then a non-destructive end.

An order that cannot go through a form (delivered when cancelling, not cancelled when restoring…) is
explained right away and flagged in ``order_problem``; the form then ends instead of trapping the buyer.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import ActionDeps, BuyerNotLinked, human_button, make_turn
from actions.context import Language, language_of, latest_entity, normalise_order_id
from actions.digressions import answer_digression
from actions.order_status import UNDELIVERED, suggest_order_ids
from actions.repair import ID_LIKE, STRONG_REASON, Reading, Turn, Verdict, read_turn
from actions.texts import (
    ACCOUNT_RULES,
    ACCOUNT_WHAT,
    BUTTONS,
    PAYMENT_ISSUE_LABELS,
    clock,
    message,
    state_label,
)
from integrations.platform.errors import NotFound, NotLinked, PlatformError
from integrations.platform.models import CANCEL_REASON_TAGS, Order

log = logging.getLogger(__name__)

SlotValues = dict[str, Any]

# Reasons where one save offer comes before cancelling (DESIGN: fewer needless cancellations).
SAVEABLE_REASONS = {"wrong_account", "wrong_region", "arrival_too_slow", "payment_problem"}
# When the reason classifier found nothing, the NLU intent of the answer still says something about why.
REASON_BY_INTENT = {
    "wrong_account": "wrong_account",
    "wrong_region": "wrong_region",
    "arrival_time": "arrival_too_slow",
    "refund_guarantee": "arrival_too_slow",
    "order_status": "arrival_too_slow",
    "payment_problem": "payment_problem",
    "complain": "merchant_malicious",
    "merchant_rating": "merchant_malicious",
    "restore_order": "user_mistake",
}
# Slots an extractor sets beside the one asked for ("就是要取消" → cancel_insisted, a new account with the offer)
SIDE_SLOTS = ("cancel_insisted", "cancel_decision", "cancel_confirm", "account", "region")
# Slots a form's answers depend on: cleared when the buyer switches the form to another order.
ORDER_DEPENDENT = ("account", "region", "fix_confirm", "restore_confirm", "cancel_decision", "cancel_confirm")
PHONE = re.compile(r"^1[3-9]\d{9}$")
DIGITS_5_12 = re.compile(r"^\d{5,12}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[A-Za-z]{2,}$")


def reason_tag(turn: Turn) -> str:
    """The cancel reason of a message: the classifier's entity (or a button's), else by intent, else other."""
    tag = turn.entities.get("cancel_reason")
    by_intent = REASON_BY_INTENT.get(turn.intent) if turn.confident else None
    if tag == "other" and by_intent and turn.reason_confidence < STRONG_REASON:
        return by_intent  # "pay button doesn't work": a confident payment_problem beats a weak "other"
    if tag in CANCEL_REASON_TAGS:
        return tag
    return by_intent or "other"


def payment_issue_from(text: str, entities: dict[str, str]) -> str:
    issue = entities.get("payment_issue")
    if issue in PAYMENT_ISSUE_LABELS:
        return issue
    cleaned = text.strip()
    for key, labels in PAYMENT_ISSUE_LABELS.items():
        if cleaned in labels.values() or cleaned == key:
            return key
    return "other"


def normalise_account(value: str, kind: str) -> str | None:
    """The account as the platform expects it, or None when it cannot be one for this product kind."""
    compact = re.sub(r"[\s\-()]", "", value.strip())
    if compact.startswith("+86"):
        compact = compact[3:]
    elif compact.startswith("86") and len(compact) == 13:
        compact = compact[2:]
    if kind == "phone_topup":
        return compact if PHONE.match(compact) else None
    if kind == "game_card":
        return compact if DIGITS_5_12.match(compact) else None
    if PHONE.match(compact) or DIGITS_5_12.match(compact):
        return compact
    return value.strip() if EMAIL.match(value.strip()) else None


def exit_form(reason: str, *clear: str) -> list[EventType]:
    """End the form now; its submit action reads ``flow_exit`` and says what happens next."""
    return [
        *(SlotSet(slot, None) for slot in clear),
        SlotSet("flow_exit", reason),
        SlotSet("requested_slot", None),
    ]


def ask_again(slot: str, prompt: str, *extra: EventType) -> list[EventType]:
    """Keep the form on ``slot``; the slot's question is asked again, after ``prompt`` (see asks.py)."""
    return [SlotSet(slot, None), *extra, SlotSet("repair_prompt", prompt), SlotSet("requested_slot", slot)]


class RepairingForm(FormValidationAction):  # type: ignore[misc]
    """A form validator that reads each turn against the question asked before taking it as an answer."""

    form: str = ""

    def __init__(self, deps: ActionDeps) -> None:
        self.deps = deps

    def name(self) -> str:
        return f"validate_{self.form}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        slot = tracker.get_slot("requested_slot")
        if slot is None or (tracker.active_loop or {}).get("name") != self.form:
            return list(await super().run(dispatcher, tracker, domain))  # activation: the opening message
        turn = Turn.of(tracker)
        # the order the form was about before this message (a mapping may already hold a new id in order_id)
        reading = read_turn(self.form, slot, turn, tracker.get_slot("current_order_id"))
        log.info("%s: %s while asking %s (intent %s)", self.form, reading.verdict, slot, reading.intent)
        if reading.verdict is Verdict.VALUE:
            events = await self.take_answer(dispatcher, tracker, domain, slot, turn)
            if not any(event.get("name") != "requested_slot" for event in events):
                return await self.unclear(dispatcher, tracker, slot, turn)  # nothing usable in it after all
            if tracker.get_slot("repair_unclear"):
                events.append(SlotSet("repair_unclear", None))
            return events
        return await self.repair(dispatcher, tracker, slot, turn, reading)

    async def take_answer(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
        slot: str,
        turn: Turn,
    ) -> list[EventType]:
        new_order = normalise_order_id(turn.entities.get("order_id"))
        if slot != "order_id" and new_order and new_order != tracker.get_slot("current_order_id"):
            return await self._switch_order(dispatcher, tracker, domain, new_order)
        before = dict(tracker.slots)
        events = list(await super().run(dispatcher, tracker, domain))
        # rasa_sdk returns only the slots of required_slots; keep what our extractors set beside the answer
        returned = {event.get("name") for event in events}
        kept = [
            SlotSet(name, tracker.slots.get(name))
            for name in SIDE_SLOTS
            if name not in returned and tracker.slots.get(name) != before.get(name)
        ]
        return kept + events

    async def _switch_order(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any], order_id: str
    ) -> list[EventType]:
        """ "不是这个，是KM…": the form goes on about the other order, its order-bound answers asked afresh."""
        values = dict.fromkeys(ORDER_DEPENDENT) | await self.validate_order_id(
            order_id, dispatcher, tracker, domain
        )
        tracker.slots.update(values)
        events: list[EventType] = [SlotSet(slot, value) for slot, value in values.items()]
        return events + await self.next_slot(dispatcher, tracker, domain)

    async def next_slot(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        required = await self.required_slots(self.domain_slots(domain), dispatcher, tracker, domain)
        missing = next((slot for slot in required if tracker.slots.get(slot) is None), None)
        return [SlotSet("requested_slot", missing)]

    async def repair(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, slot: str, turn: Turn, reading: Reading
    ) -> list[EventType]:
        verdict = reading.verdict
        if verdict is Verdict.STOP:
            return exit_form("stop", slot)
        if verdict is Verdict.KEEP:
            return [SlotSet(slot, None), SlotSet("cancel_decision", "keep"), SlotSet("requested_slot", None)]
        if verdict is Verdict.HANDOFF:
            return exit_form("handoff", slot)
        if verdict is Verdict.SWITCH:
            return exit_form(f"switch:{reading.intent}", slot)
        if verdict is Verdict.ASK_CANCEL_OR_STOP:
            return ask_again(slot, "cancel_or_stop")
        if verdict is Verdict.REPEAT:
            return ask_again(slot, "repeat")
        if verdict is Verdict.DIGRESS:
            await answer_digression(reading.intent, dispatcher, tracker, self.deps)
            return ask_again(slot, "digressed")
        return await self.unclear(dispatcher, tracker, slot, turn)

    async def unclear(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, slot: str, turn: Turn
    ) -> list[EventType]:
        """One clarifying question; a second message we cannot place ends the form without changing anything."""
        if tracker.get_slot("repair_unclear"):
            return self.give_up(slot)
        prompt = "reason_unclear" if slot == "cancel_reason" else "unclear"
        return ask_again(slot, prompt, SlotSet("repair_unclear", 1.0))

    def give_up(self, slot: str) -> list[EventType]:
        return exit_form("unclear", slot, "repair_unclear")


class OrderFormValidation(RepairingForm):
    """Base of form validators whose first slot is ``order_id``."""

    def order_problem(self, order: Order, language: Language) -> tuple[str, list[dict[str, str]]] | None:
        """Why this order cannot go through the form (text and buttons), or None when it can."""
        return None

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[str]:
        if tracker.get_slot("order_problem"):
            return ["order_id"]
        return await self.slots_after_order(domain_slots, tracker)

    async def slots_after_order(self, domain_slots: list[str], tracker: Tracker) -> list[str]:
        return domain_slots

    async def extract_order_id(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        """On the form's first turn, an order id in the message wins; else the order in context."""
        if tracker.get_slot("requested_slot") is not None or tracker.get_slot("order_id"):
            return {}
        current = tracker.get_slot("current_order_id")
        return {"order_id": current, "order_problem": None} if current else {"order_problem": None}

    async def validate_order_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        language = language_of(tracker)
        if value is None:
            return {"order_id": None}
        order_id = normalise_order_id(value)
        if order_id is None:
            dispatcher.utter_message(text=message("bad_order_id", language, value=str(value)[:40]))
            return {"order_id": None}
        turn = make_turn(tracker, self.deps.platform)
        try:
            order = await turn.order(order_id)
        except (BuyerNotLinked, NotLinked):
            dispatcher.utter_message(text=message("not_linked", language))
            return {"order_id": order_id, "order_problem": "not_linked"}
        except NotFound:
            return await self._not_found(dispatcher, tracker, order_id)
        except PlatformError as exc:
            log.warning("%s: platform error validating %s: %s", self.name(), order_id, exc)
            dispatcher.utter_message(
                text=message("platform_down", language), buttons=[human_button(language)]
            )
            return {"order_id": order_id, "order_problem": "platform_down"}
        problem = self.order_problem(order, language)
        if problem is not None:
            text, buttons = problem
            dispatcher.utter_message(text=text, buttons=buttons)
            return {"order_id": order_id, "order_problem": "not_eligible", "current_order_id": order_id}
        return {"order_id": order_id, "order_problem": None, "current_order_id": order_id}

    async def _not_found(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, order_id: str
    ) -> SlotValues:
        """A number that is not theirs: perhaps a digit off. Offer the buyer's own order it most resembles."""
        language = language_of(tracker)
        suggestions = await self._suggestions(tracker, order_id)
        if suggestions:
            self._offer(dispatcher, language, suggestions, typed=order_id)
            return {"order_id": None, "repair_prompt": "suggested"}
        dispatcher.utter_message(text=message("order_not_found", language, order_id=order_id))
        return {"order_id": None}

    async def _suggestions(self, tracker: Tracker, typed: str) -> list[str]:
        try:
            turn = make_turn(tracker, self.deps.platform)
            orders = await self.deps.platform.list_orders(await turn.buyer_id(), limit=20)
        except (BuyerNotLinked, PlatformError):
            return []
        return suggest_order_ids(typed, [order.order_id for order in orders])

    @staticmethod
    def _offer(
        dispatcher: CollectingDispatcher, language: Language, suggestions: list[str], typed: str
    ) -> None:
        buttons = [
            {"title": order_id, "payload": f'/inform{{"order_id":"{order_id}"}}'} for order_id in suggestions
        ]
        buttons.append({"title": BUTTONS["none_of_these"][language], "payload": "/stop"})
        dispatcher.utter_message(text=message("did_you_mean", language, typed=typed[:40]), buttons=buttons)

    async def unclear(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, slot: str, turn: Turn
    ) -> list[EventType]:
        if slot == "order_id":
            typed = ID_LIKE.search(turn.text)
            if typed is not None:
                suggestions = await self._suggestions(tracker, typed.group(0))
                if suggestions:
                    self._offer(dispatcher, language_of(tracker), suggestions, typed=typed.group(0))
                    return ask_again(slot, "suggested")
        return await super().unclear(dispatcher, tracker, slot, turn)


class ValidateOrderStatusForm(OrderFormValidation):
    form = "order_status_form"

    async def extract_order_id(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        return {}  # "where is my order?" without a number always offers the list


class ValidateRefundForm(OrderFormValidation):
    form = "refund_form"


class ValidateMerchantRatingForm(OrderFormValidation):
    form = "merchant_rating_form"


# What a plain yes to the save offer means, by the reason the offer answered: every offer asks "keep it?".
OFFER_YES = {
    "wrong_account": "fix_account",  # "fix the account instead?"
    "wrong_region": "fix_region",  # "fix the region instead?"
    "arrival_too_slow": "keep",  # "keep waiting?"
    "payment_problem": "keep",  # "keep the order and pay again?"
}


class ValidateCancelForm(OrderFormValidation):
    """Which order, why, at most one save offer, and a read-back before anything is cancelled.

    ``cancel_decision``: ``keep`` / ``undecided`` (kept), ``fix_account`` / ``fix_region`` (saved by the fix
    form), ``cancel`` (the buyer said cancel a second time, unambiguously), ``confirm`` (read back first).
    """

    form = "cancel_form"

    def order_problem(self, order: Order, language: Language) -> tuple[str, list[dict[str, str]]] | None:
        if order.state in UNDELIVERED:
            return None
        hint = message("hint_delivered", language) if order.state == "delivered" else ""
        text = message(
            "order_not_cancellable",
            language,
            order_id=order.order_id,
            state=state_label(order.state, language),
            hint=hint,
        )
        return text.strip(), [human_button(language)] if order.state == "delivered" else []

    async def slots_after_order(self, domain_slots: list[str], tracker: Tracker) -> list[str]:
        decision = tracker.get_slot("cancel_decision")
        if decision in ("keep", "undecided", "fix_account", "fix_region"):
            return ["order_id", "cancel_decision"]
        slots = ["order_id", "cancel_reason"]
        if tracker.get_slot("cancel_reason") in SAVEABLE_REASONS:
            slots.append("cancel_decision")
        if decision != "cancel" and not tracker.get_slot("cancel_insisted"):
            slots.append("cancel_confirm")
        return slots

    async def extract_cancel_reason(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        turn = Turn.of(tracker)
        requested = tracker.get_slot("requested_slot")
        if requested is None:  # the opening message: a reason stated there is not asked again
            tag = turn.entities.get("cancel_reason")
            return {"cancel_reason": tag} if tag in CANCEL_REASON_TAGS else {}
        if requested != "cancel_reason":
            return {}
        if turn.intent == "keep_order":
            return {"cancel_decision": "keep"}
        if turn.intent == "cancel_order" and "cancel_reason" not in turn.entities:
            # a second cancel: tapped, it skips the read-back; typed (a misread "不取消了 我等" came out
            # cancel_order 0.97), the read-back asks first, where "不取消" keeps the order
            return {"cancel_reason": "other", "cancel_insisted": True if turn.is_payload else None}
        return {"cancel_reason": reason_tag(turn)}

    async def extract_cancel_decision(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        turn = Turn.of(tracker)
        requested = tracker.get_slot("requested_slot")
        if requested in ("cancel_reason", "cancel_confirm") and turn.intent == "keep_order":
            return {"cancel_decision": "keep"}
        if requested != "cancel_decision":
            return {}
        return decision_from(turn, tracker.get_slot("cancel_reason"))

    async def extract_cancel_confirm(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        if tracker.get_slot("requested_slot") != "cancel_confirm":
            return {}
        turn = Turn.of(tracker)
        intent = turn.intent
        if intent in ("affirm", "cancel_order", "request_refund") and turn.decisive:
            return {"cancel_confirm": True}
        if intent in ("deny", "keep_order"):
            return {"cancel_confirm": False, "cancel_decision": "keep"}
        return {}

    def give_up(self, slot: str) -> list[EventType]:
        if (
            slot == "cancel_reason"
        ):  # the reason is for our statistics; the read-back still protects the order
            return [
                SlotSet("cancel_reason", "other"),
                SlotSet("repair_unclear", None),
                SlotSet("requested_slot", "cancel_confirm"),
            ]
        if slot == "order_id":
            return super().give_up(slot)
        return [SlotSet(slot, None), SlotSet("cancel_decision", "undecided"), SlotSet("requested_slot", None)]


def decision_from(turn: Turn, reason: str | None) -> SlotValues:
    """The answer to the save offer. Only an explicit cancel cancels; a no is read back first."""
    intent, entities = turn.intent, turn.entities
    if intent in ("keep_order", "thank"):
        return {"cancel_decision": "keep"}
    if intent == "wrong_account" or "account" in entities:
        values: SlotValues = {"cancel_decision": "fix_account"}
        if "account" in entities:
            values["account"] = entities["account"]
        return values
    if intent == "wrong_region" or "region" in entities:
        values = {"cancel_decision": "fix_region"}
        if "region" in entities:
            values["region"] = entities["region"]
        return values
    if intent == "affirm":
        return {"cancel_decision": OFFER_YES.get(reason or "", "keep")}
    if intent == "cancel_order":
        # only the [仍要取消] button skips the read-back: a typed "cancel" may be a misread "不取消了 我等"
        return {"cancel_decision": "cancel" if turn.is_payload else "confirm"}
    if intent in ("deny", "request_refund"):
        return {"cancel_decision": "confirm"}
    return {}


class ValidateFixTargetForm(OrderFormValidation):
    form = "fix_target_form"

    def order_problem(self, order: Order, language: Language) -> tuple[str, list[dict[str, str]]] | None:
        if order.state in UNDELIVERED:
            return None
        hint = message("hint_delivered", language) if order.state == "delivered" else ""
        text = message(
            "not_fixable",
            language,
            order_id=order.order_id,
            state=state_label(order.state, language),
            hint=hint,
        )
        return text.strip(), [human_button(language)]

    async def slots_after_order(self, domain_slots: list[str], tracker: Tracker) -> list[str]:
        field = tracker.get_slot("fix_field")
        value_slot = ["region"] if field == "region" else ["account"]
        return ["order_id", "fix_field", *value_slot, "fix_confirm"]

    async def extract_fix_field(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        if tracker.get_slot("requested_slot") != "fix_field":
            return {}
        turn = Turn.of(tracker)
        if turn.intent == "wrong_region" or "region" in turn.entities:
            return {"fix_field": "region"}
        if turn.intent == "wrong_account" or "account" in turn.entities:
            return {"fix_field": "account"}
        return {}

    async def extract_account(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        return self._fresh_value(tracker, "account")

    async def extract_region(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        return self._fresh_value(tracker, "region")

    async def extract_fix_confirm(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        """At the read-back, a new value ("不对，是139…") corrects it and is read back again."""
        if tracker.get_slot("requested_slot") != "fix_confirm":
            return {}
        turn = Turn.of(tracker)
        field = tracker.get_slot("fix_field") or "account"
        if field in turn.entities and turn.intent != "affirm":
            return {field: turn.entities[field], "fix_confirm": None}
        return {}

    @staticmethod
    def _fresh_value(tracker: Tracker, slot: str) -> SlotValues:
        """A value left from an earlier turn is not the new one: on the first turn only this message counts."""
        if tracker.get_slot("requested_slot") is None and tracker.get_slot(slot) is not None:
            return {slot: latest_entity(tracker, slot)}
        return {}

    async def validate_account(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        if value is None:  # a stale account dropped on the form's first turn: ask for it, nothing to explain
            return {"account": None}
        language = language_of(tracker)
        order = await self._order(tracker)
        kind = order.product.kind if order else "game_card"
        account = normalise_account(str(value), kind)
        if account is None:
            what = ACCOUNT_WHAT[kind][language]
            rule = ACCOUNT_RULES[kind][language]
            dispatcher.utter_message(
                text=message("invalid_account", language, value=str(value)[:40], what=what, rule=rule)
            )
            return {"account": None}
        return {"account": account}

    async def validate_region(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        region = str(value or "").strip()
        # the platform knows the real list of regions; here only what cannot be a region is asked again
        return {"region": region if 2 <= len(region) <= 24 else None}

    async def _order(self, tracker: Tracker) -> Order | None:
        order_id = tracker.get_slot("order_id")
        if not order_id:
            return None
        try:
            return await make_turn(tracker, self.deps.platform).order(order_id)
        except (PlatformError, BuyerNotLinked):
            return None


class ValidateRestoreForm(OrderFormValidation):
    form = "restore_form"

    def order_problem(self, order: Order, language: Language) -> tuple[str, list[dict[str, str]]] | None:
        if order.state != "cancelled":
            state = state_label(order.state, language)
            return message("not_restorable_state", language, order_id=order.order_id, state=state), []
        until = order.cancel.restorable_until if order.cancel else None
        if until is None or until <= datetime.now(UTC):
            when = clock(until, self.deps.timezone, language) if until else "-"
            text = message("restore_window_passed", language, order_id=order.order_id, until=when)
            return text, [human_button(language)]
        return None

    async def extract_restore_confirm(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        if tracker.get_slot("requested_slot") != "restore_confirm":
            return {}
        intent = Turn.of(tracker).intent
        if intent in ("affirm", "restore_order", "keep_order"):
            return {"restore_confirm": True}
        if intent in ("deny", "cancel_order"):
            return {"restore_confirm": False}
        return {}


class ValidatePaymentForm(RepairingForm):
    form = "payment_form"

    async def extract_payment_issue(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> SlotValues:
        if tracker.get_slot("requested_slot") != "payment_issue":
            return {}
        turn = Turn.of(tracker)
        return {"payment_issue": payment_issue_from(turn.text, turn.entities)}


def confirm_buttons(language: Language, yes: str, no: str) -> list[dict[str, str]]:
    return [
        {"title": BUTTONS[yes][language], "payload": "/affirm"},
        {"title": BUTTONS[no][language], "payload": "/deny"},
    ]
